import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument, isSeq, type YAMLMap } from 'yaml';
import { BOOTSTRAP_TOKENS_FILE, generateToken, hashToken, isScope, parseTokenFile, SCOPES, type Scope } from '../api/auth/index.js';
import { TenantdError } from '../core/errors.js';

const USAGE = `Usage:
  tenantd token create --name <name> --scopes <scope,…> [--tokens-file <file> | --data-dir <dir>]
  tenantd token list   [--tokens-file <file> | --data-dir <dir>]
  tenantd token revoke --name <name> [--tokens-file <file> | --data-dir <dir>]
Scopes: ${SCOPES.join(', ')}. The default file is <data-dir>/${BOOTSTRAP_TOKENS_FILE} (data dir ./.tenantd).
Only a token's hash is stored; a running daemon picks up changes without a restart.
`;

const usage = (msg: string): TenantdError => new TenantdError('E_USAGE', 'stalled', `${msg}\n${USAGE}`);

/** `tenantd token …`: manage the named API tokens a daemon accepts. Returns the text to print. */
export async function tokenCommand(argv: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  const [action, ...rest] = argv;
  let values: Record<string, string | undefined>;
  try {
    values = parseArgs({
      args: rest,
      options: { name: { type: 'string' }, scopes: { type: 'string' }, 'tokens-file': { type: 'string' }, 'data-dir': { type: 'string' } },
      strict: true,
    }).values as Record<string, string | undefined>;
  } catch (err: unknown) {
    throw usage(err instanceof Error ? err.message : String(err));
  }
  const file = path.resolve(
    cwd,
    values['tokens-file'] ?? env.TENANTD_TOKENS_FILE ?? path.join(values['data-dir'] ?? env.TENANTD_DATA_DIR ?? '.tenantd', BOOTSTRAP_TOKENS_FILE),
  );
  const text = await fsp.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return 'tokens: []\n';
    throw err;
  });
  const doc = parseDocument(text);
  const list = doc.get('tokens');
  if (!isSeq(list)) throw new TenantdError('E_AUTH_CONFIG', 'stalled', `${file}: expected a top-level "tokens" list`);
  const names = (): string[] => list.items.map((i) => String((i as YAMLMap).get('name')));

  switch (action) {
    case 'list': {
      const parsed = parseTokenFile(text, file);
      return parsed.tokens.length === 0 ? `no tokens in ${file}\n` : `${parsed.tokens.map((t) => `${t.name.padEnd(24)} ${t.scopes.join(',')}`).join('\n')}\n`;
    }
    case 'create': {
      const name = values.name;
      if (!name || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) throw usage('--name: letters, digits, . _ @ - (at most 64)');
      if (names().includes(name)) throw usage(`a token named "${name}" exists; revoke it first`);
      const scopes = (values.scopes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      if (scopes.length === 0 || !scopes.every(isScope)) throw usage(`--scopes: a comma-separated list of ${SCOPES.join(', ')}`);
      const token = generateToken();
      list.add(doc.createNode({ name, hash: await hashToken(token), scopes: scopes as Scope[] }));
      await save(file, doc.toString());
      return `Created token "${name}" (${scopes.join(', ')}). It is shown only now; ${file} keeps its hash:\n\n    ${token}\n\n`;
    }
    case 'revoke': {
      const name = values.name;
      const index = names().indexOf(name ?? '');
      if (!name || index === -1) throw usage(`no token named "${name ?? ''}" in ${file}`);
      list.items.splice(index, 1);
      await save(file, doc.toString());
      return `Revoked token "${name}".\n`;
    }
    default:
      throw usage(action ? `unknown action "${action}"` : 'an action is required');
  }
}

/** Validate, then write through a 0600 temp file and a rename, so a daemon never reads half a file. */
async function save(file: string, text: string): Promise<void> {
  parseTokenFile(text, file);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, text, { mode: 0o600 });
  await fsp.rename(tmp, file);
}
