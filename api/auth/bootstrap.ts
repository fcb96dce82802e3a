import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { generateToken, hashToken, type AuthFs } from './tokens.js';

export const BOOTSTRAP_TOKENS_FILE = 'api-tokens.yaml';
export const BOOTSTRAP_TOKEN_FILE = 'admin-token';
export const BOOTSTRAP_TOKEN_NAME = 'admin';

export interface BootstrapResult {
  /** The plaintext admin token — only when this call created it. Never log it: it is in `tokenFile`. */
  readonly token: string | null;
  /** `<dataDir>/api-tokens.yaml`: pass it as the authenticator's `tokensFile`. */
  readonly file: string;
  /** `<dataDir>/admin-token` (mode 0600): the plaintext, for the operator to read once and delete. */
  readonly tokenFile: string;
}

/**
 * For a daemon with neither a tokens file nor JWT configured: make sure `<dataDir>/api-tokens.yaml`
 * exists, holding the SHA-256 of one admin token. The call that creates it also writes the
 * plaintext to `<dataDir>/admin-token` with mode 0600 — the only place it is ever written: never
 * to stdout or a log, which end up in container logs and log pipelines. Every later call returns
 * `token: null`.
 *
 * Both files are written and fsynced as temporary files (mode 0600) first; then the tokens file is
 * hard-linked to its name — `link` fails if the name exists, so of two racing starts exactly one
 * creates it — and only that one renames its token file into place. A crash never leaves a torn
 * file. (A crash in the moment between the link and the rename loses the plaintext: delete
 * api-tokens.yaml and restart.) To issue a new bootstrap token, delete api-tokens.yaml and restart.
 */
export async function ensureBootstrapToken(dataDir: string, fs: Pick<AuthFs, 'mkdir' | 'open' | 'link' | 'rm' | 'stat' | 'rename'> = fsp): Promise<BootstrapResult> {
  const file = path.join(dataDir, BOOTSTRAP_TOKENS_FILE);
  const tokenFile = path.join(dataDir, BOOTSTRAP_TOKEN_FILE);
  if (await exists(fs, file)) return { token: null, file, tokenFile };
  await fs.mkdir(dataDir, { recursive: true });
  const token = generateToken();
  const content = [
    '# tenantd API tokens (created at first start). Only hashes are stored: the plaintext of the',
    `# admin token below was written once to ${BOOTSTRAP_TOKEN_FILE} (mode 0600). Delete this file and restart for a new one.`,
    '# Add tokens as further entries; hash: sha256:<hex of SHA-256(token)>.',
    '# Scopes: tenants:read, tenants:write, tenants:delete, admin.',
    'tokens:',
    `  - name: ${BOOTSTRAP_TOKEN_NAME}`,
    `    hash: ${await hashToken(token)}`,
    '    scopes: [admin]',
    '',
  ].join('\n');
  const tmpTokens = await writePrivateTemp(fs, file, content);
  let tmpToken: string | null = null;
  try {
    tmpToken = await writePrivateTemp(fs, tokenFile, `${token}\n`);
    try {
      await fs.link(tmpTokens, file);
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { token: null, file, tokenFile };
      throw err;
    }
    await fs.rename(tmpToken, tokenFile);
    tmpToken = null;
    return { token, file, tokenFile };
  } finally {
    await fs.rm(tmpTokens, { force: true });
    if (tmpToken) await fs.rm(tmpToken, { force: true });
  }
}

/** A new temporary file next to `target`, mode 0600 whatever the umask, content written and fsynced. */
async function writePrivateTemp(fs: Pick<AuthFs, 'open'>, target: string, content: string): Promise<string> {
  const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await fs.open(tmp, 'wx', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(content, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  return tmp;
}

async function exists(fs: Pick<AuthFs, 'stat'>, file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
