import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import git from 'isomorphic-git';
import { TenantdError } from '../core/errors.js';

const TENANT_SCHEMA_FILE = 'schemas/tenant.schema.json';

/** `tenants-example/` ships beside `daemon/` in the source tree and beside `dist/` in the package. */
export function findExampleDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'tenants-example');
    if (fs.existsSync(path.join(candidate, 'tenants'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new TenantdError('E_EXAMPLE_MISSING', 'stalled', 'tenants-example/ was not found next to the tenantd installation');
}

/**
 * `tenantd init <dir>`: a new git repository on branch `main` (or `branch`) with the example
 * tenants committed. Refuses a directory that already holds a repository.
 */
export async function initTenantsRepo(dir: string, opts: { branch?: string; from?: string; author?: { name: string; email: string } } = {}): Promise<string> {
  const branch = opts.branch ?? 'main';
  if (fs.existsSync(path.join(dir, '.git'))) {
    throw new TenantdError('E_REPO_EXISTS', 'stalled', `${dir} already contains a git repository`, { dir });
  }
  const from = opts.from ?? findExampleDir();
  await fsp.mkdir(path.join(dir, 'tenants'), { recursive: true });
  await git.init({ fs, dir, defaultBranch: branch });
  const names = (await fsp.readdir(path.join(from, 'tenants'))).filter((n) => /\.ya?ml$/.test(n)).sort();
  for (const name of names) {
    await fsp.copyFile(path.join(from, 'tenants', name), path.join(dir, 'tenants', name));
    await git.add({ fs, dir, filepath: `tenants/${name}` });
  }
  // The example files name `../schemas/tenant.schema.json` (yaml-language-server): ship it along.
  const schema = path.join(from, TENANT_SCHEMA_FILE);
  if (fs.existsSync(schema)) {
    await fsp.mkdir(path.join(dir, 'schemas'), { recursive: true });
    await fsp.copyFile(schema, path.join(dir, TENANT_SCHEMA_FILE));
    await git.add({ fs, dir, filepath: TENANT_SCHEMA_FILE });
  }
  await fsp.writeFile(
    path.join(dir, 'README.md'),
    '# Tenants repository\n\n`tenants/<tenantId>.yaml` is the desired infrastructure of each tenant, written by people and the tenantd API.\n`status/<tenantId>.yaml` is what tenantd observed; only tenantd writes it.\n`schemas/tenant.schema.json` lets an editor with yaml-language-server check tenant files as you type; refresh it from a running tenantd at `/schemas/tenant.schema.json` after an upgrade.\n',
  );
  await git.add({ fs, dir, filepath: 'README.md' });
  return git.commit({
    fs,
    dir,
    message: `Add ${names.length} example tenants\n`,
    author: opts.author ?? { name: 'tenantd init', email: 'tenantd@localhost' },
  });
}

/** The embedded default: create `<data-dir>/tenants` from the examples on first start. */
export async function ensureEmbeddedRepo(dir: string, branch: string): Promise<string> {
  if (!fs.existsSync(path.join(dir, '.git'))) await initTenantsRepo(dir, { branch });
  return dir;
}
