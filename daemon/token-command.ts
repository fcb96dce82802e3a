import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parseDocument, isSeq, type YAMLMap } from 'yaml';
import { BOOTSTRAP_TOKENS_FILE, generateToken, hashToken, isScope, parseTokenFile, SCOPES, type Scope } from '../api/auth/index.js';
import { TenantdError } from '../core/errors.js';
import { helpText, parseCommand, stringFlag, usageError, type CommandSpec } from './args.js';

const FILE_FLAGS = {
  'tokens-file': { type: 'string', env: 'TENANTD_TOKENS_FILE', help: `the tokens file (default <data-dir>/${BOOTSTRAP_TOKENS_FILE})` },
  'data-dir': { type: 'string', env: 'TENANTD_DATA_DIR', help: 'the daemon\'s data directory (default ./.tenantd)' },
} as const;
const NAME_FLAG = { type: 'string', help: 'the token\'s name: letters, digits, . _ @ - (at most 64); commits made with it are authored so' } as const;

const ACTIONS = {
  create: {
    name: 'token create',
    synopsis: '--name <name> --scopes <scope,…> [--tokens-file <file> | --data-dir <dir>]',
    summary: 'Create a named API token and print it once; only its hash is stored. A running daemon picks it up without a restart.',
    flags: { name: NAME_FLAG, scopes: { type: 'string', help: `comma-separated: ${SCOPES.join(', ')}` }, ...FILE_FLAGS },
  },
  list: { name: 'token list', synopsis: '[--tokens-file <file> | --data-dir <dir>]', summary: 'List the tokens (names and scopes; never a secret).', flags: { ...FILE_FLAGS } },
  revoke: { name: 'token revoke', synopsis: '--name <name> [--tokens-file <file> | --data-dir <dir>]', summary: 'Revoke a token; a running daemon refuses it from then on.', flags: { name: NAME_FLAG, ...FILE_FLAGS } },
} satisfies Record<string, CommandSpec>;
type Action = keyof typeof ACTIONS;

export const TOKEN_COMMAND: CommandSpec = {
  name: 'token',
  synopsis: '<create|list|revoke> [flags]',
  summary: 'Manage the named, hashed, scoped API tokens a daemon accepts.',
  flags: {},
  notes: `Actions:\n${Object.entries(ACTIONS).map(([a, spec]) => `  ${a.padEnd(7)} ${spec.summary}`).join('\n')}\nRun "tenantd token <action> --help" for an action's flags.`,
};

/** `tenantd token …`: manage the named API tokens a daemon accepts. Returns the text to print. */
export async function tokenCommand(argv: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  const [action, ...rest] = argv;
  if (action === '--help' || action === '-h') return helpText(TOKEN_COMMAND);
  if (action === undefined) throw usageError(TOKEN_COMMAND, 'an action is required: create, list or revoke');
  if (!Object.hasOwn(ACTIONS, action)) throw usageError(TOKEN_COMMAND, `unknown action ${JSON.stringify(action)}: create, list or revoke`);
  const spec: CommandSpec = ACTIONS[action as Action];
  const parsed = parseCommand(spec, rest);
  if (parsed.help) return helpText(spec);
  const values = parsed.values;
  const file = path.resolve(
    cwd,
    stringFlag(values, 'tokens-file') ?? env['TENANTD_TOKENS_FILE'] ?? path.join(stringFlag(values, 'data-dir') ?? env['TENANTD_DATA_DIR'] ?? '.tenantd', BOOTSTRAP_TOKENS_FILE),
  );
  const text = await fsp.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return 'tokens: []\n';
    throw err;
  });
  const doc = parseDocument(text);
  const list = doc.get('tokens');
  if (!isSeq(list)) throw new TenantdError('E_AUTH_CONFIG', 'stalled', `${file}: expected a top-level "tokens" list`);
  const names = (): string[] => list.items.map((i) => String((i as YAMLMap).get('name')));
  const name = stringFlag(values, 'name');

  switch (action as Action) {
    case 'list': {
      const parsedFile = parseTokenFile(text, file);
      return parsedFile.tokens.length === 0 ? `no tokens in ${file}\n` : `${parsedFile.tokens.map((t) => `${t.name.padEnd(24)} ${t.scopes.join(',')}`).join('\n')}\n`;
    }
    case 'create': {
      if (!name || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) throw usageError(spec, '--name: letters, digits, . _ @ - (at most 64)', { flag: 'name' });
      const scopes = (stringFlag(values, 'scopes') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      if (scopes.length === 0 || !scopes.every(isScope)) throw usageError(spec, `--scopes: a comma-separated list of ${SCOPES.join(', ')}`, { flag: 'scopes' });
      if (names().includes(name)) throw new TenantdError('E_TOKEN_EXISTS', 'stalled', `a token named "${name}" exists in ${file}; revoke it first`, { name });
      const token = generateToken();
      list.add(doc.createNode({ name, hash: await hashToken(token), scopes: scopes as Scope[] }));
      await save(file, doc.toString());
      return `Created token "${name}" (${scopes.join(', ')}). It is shown only now; ${file} keeps its hash:\n\n    ${token}\n\n`;
    }
    case 'revoke': {
      if (!name) throw usageError(spec, '--name is required', { flag: 'name' });
      const index = names().indexOf(name);
      if (index === -1) throw new TenantdError('E_TOKEN_NOT_FOUND', 'stalled', `no token named "${name}" in ${file}`, { name });
      list.items.splice(index, 1);
      await save(file, doc.toString());
      return `Revoked token "${name}".\n`;
    }
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
