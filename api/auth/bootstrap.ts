import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { generateToken, hashToken, type AuthFs } from './tokens.js';

export const BOOTSTRAP_TOKENS_FILE = 'api-tokens.yaml';
export const BOOTSTRAP_TOKEN_NAME = 'admin';

export interface BootstrapResult {
  /** The plaintext admin token — only when this call created the file; print it once. */
  readonly token: string | null;
  /** `<dataDir>/api-tokens.yaml`: pass it as the authenticator's `tokensFile`. */
  readonly file: string;
}

/**
 * For a daemon with neither a tokens file nor JWT configured: make sure `<dataDir>/api-tokens.yaml`
 * exists, holding the SHA-256 of one admin token. Only the call that creates the file learns the
 * plaintext (it is never stored); every later call returns `token: null`.
 *
 * Creation is atomic and never clobbers: the content is written and fsynced to a temporary file
 * (mode 0600) which is then hard-linked to the final name — `link` fails if the name exists, so two
 * daemons racing on one data dir cannot both "create" it, and a crash never leaves a torn file.
 * To issue a new bootstrap token, delete the file and restart.
 */
export async function ensureBootstrapToken(dataDir: string, fs: Pick<AuthFs, 'mkdir' | 'open' | 'link' | 'rm' | 'stat'> = fsp): Promise<BootstrapResult> {
  const file = path.join(dataDir, BOOTSTRAP_TOKENS_FILE);
  if (await exists(fs, file)) return { token: null, file };
  await fs.mkdir(dataDir, { recursive: true });
  const token = generateToken();
  const content = [
    '# tenantd API tokens (created at first start). Only hashes are stored: the plaintext of the',
    '# admin token below was printed once by the daemon. Delete this file and restart for a new one.',
    '# Add tokens as further entries; hash: sha256:<hex of SHA-256(token)>.',
    '# Scopes: tenants:read, tenants:write, tenants:delete, admin.',
    'tokens:',
    `  - name: ${BOOTSTRAP_TOKEN_NAME}`,
    `    hash: ${await hashToken(token)}`,
    '    scopes: [admin]',
    '',
  ].join('\n');
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await fs.open(tmp, 'wx', 0o600);
    try {
      await fh.chmod(0o600); // whatever the umask
      await fh.writeFile(content, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await fs.link(tmp, file);
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { token: null, file };
      throw err;
    }
    return { token, file };
  } finally {
    await fs.rm(tmp, { force: true });
  }
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
