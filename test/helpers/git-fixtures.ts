/**
 * Native-git fixtures for tests. Every call is an asynchronous `execFile` (never a synchronous
 * child process: a test's git HTTP server runs in the same process and would deadlock), runs with
 * `-c gc.auto=0` (isomorphic-git leaves many loose objects, which would start a background gc),
 * and sets the identity per command so tests do not depend on the global git config.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const FIXTURE_AUTHOR = { name: 'Fixture Author', email: 'fixture@example.test' };

const BASE_CONFIG = [
  '-c', 'gc.auto=0',
  '-c', `user.name=${FIXTURE_AUTHOR.name}`,
  '-c', `user.email=${FIXTURE_AUTHOR.email}`,
  '-c', 'init.defaultBranch=main',
  '-c', 'commit.gpgsign=false',
  '-c', 'core.autocrlf=false',
  '-c', 'protocol.version=2',
];

function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('GIT_')) delete env[k];
  }
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_CONFIG_NOSYSTEM = '1';
  env.GIT_AUTHOR_NAME = FIXTURE_AUTHOR.name;
  env.GIT_AUTHOR_EMAIL = FIXTURE_AUTHOR.email;
  env.GIT_COMMITTER_NAME = FIXTURE_AUTHOR.name;
  env.GIT_COMMITTER_EMAIL = FIXTURE_AUTHOR.email;
  return env;
}

/** Run native git in `dir` (asynchronously) and return stdout untrimmed. Rejects with stderr on failure. */
export function git(dir: string, args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      [...BASE_CONFIG, ...args],
      { cwd: dir, env: { ...gitEnv(), ...opts.env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`git ${args.join(' ')} (in ${dir}) failed: ${stderr || err.message}`));
          return;
        }
        resolve(stdout);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Run native git and return trimmed stdout. */
export async function gitOut(dir: string, args: string[], input?: string | Buffer): Promise<string> {
  return (await git(dir, args, input === undefined ? {} : { input })).trim();
}

/** A fresh temporary directory; remove it with `removeDir`. */
export async function tempDir(prefix = 'tenantd-git-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}

/** `git init` (optionally bare) with branch `main` (or `branch`). */
export async function initRepo(dir: string, opts: { bare?: boolean; branch?: string } = {}): Promise<string> {
  await fsp.mkdir(dir, { recursive: true });
  const args = ['init', '-q', `--initial-branch=${opts.branch ?? 'main'}`];
  if (opts.bare) args.push('--bare');
  await git(dir, args);
  return dir;
}

/**
 * Write (string) or delete (null) files in a work-tree repository and commit them with native git.
 * Returns the new commit id. `opts.date` (e.g. `2030-01-01T00:00:00Z`) fixes the author and
 * committer dates, so the same commits have the same ids on every run.
 */
export async function commitFiles(dir: string, files: Record<string, string | null>, message: string, opts: { date?: string } = {}): Promise<string> {
  const paths: string[] = [];
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(dir, rel);
    paths.push(rel);
    if (content === null) {
      await fsp.rm(abs, { force: true });
    } else {
      await fsp.mkdir(path.dirname(abs), { recursive: true });
      await fsp.writeFile(abs, content);
    }
  }
  if (paths.length > 0) {
    // one `git add -A` for all paths (handles deletions), fed on stdin to avoid argv limits
    await git(dir, ['add', '-A', '--pathspec-from-file=-', '--pathspec-file-nul'], { input: paths.join('\0') });
  }
  await git(dir, ['commit', '-q', '--allow-empty', '-m', message], opts.date ? { env: { GIT_AUTHOR_DATE: opts.date, GIT_COMMITTER_DATE: opts.date } } : {});
  return gitOut(dir, ['rev-parse', 'HEAD']);
}

/** Rename a file with `git mv` and commit. Returns the new commit id. */
export async function renameFile(dir: string, from: string, to: string, message: string): Promise<string> {
  await fsp.mkdir(path.dirname(path.join(dir, to)), { recursive: true });
  await git(dir, ['mv', from, to]);
  await git(dir, ['commit', '-q', '-m', message]);
  return gitOut(dir, ['rev-parse', 'HEAD']);
}

/**
 * Create `<projectRoot>/<name>` as a bare repository that accepts pushes over http-backend,
 * seeded (when `files` is given) with one commit on `main`. Returns its path.
 */
export async function makeBareRemote(
  projectRoot: string,
  name: string,
  files?: Record<string, string>,
  opts: { branch?: string } = {},
): Promise<string> {
  const branch = opts.branch ?? 'main';
  const bare = path.join(projectRoot, name);
  await initRepo(bare, { bare: true, branch });
  await git(bare, ['config', 'http.receivepack', 'true']);
  await git(bare, ['config', 'receive.denyNonFastForwards', 'true']);
  if (files && Object.keys(files).length > 0) {
    const work = await tempDir('tenantd-seed-');
    try {
      await initRepo(work, { branch });
      await commitFiles(work, files, 'seed');
      await git(work, ['push', '-q', bare, `HEAD:refs/heads/${branch}`]);
    } finally {
      await removeDir(work);
    }
  }
  return bare;
}

/** Native `git clone` (async; safe against an in-process http server). */
export async function cloneRepo(url: string, dir: string, opts: { branch?: string } = {}): Promise<string> {
  await fsp.mkdir(path.dirname(dir), { recursive: true });
  const args = ['clone', '-q'];
  if (opts.branch) args.push('--branch', opts.branch);
  args.push(url, dir);
  await git(path.dirname(dir), args);
  return dir;
}

/** Generate `count` tenant-like files under `dir`: `{ 'tenants/t0000.yaml': '...' }`. */
export function manyFiles(count: number, dir = 'tenants'): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const id = `t${String(i).padStart(4, '0')}`;
    files[`${dir}/${id}.yaml`] = `apiVersion: tenantd.io/v1\nkind: TenantInfrastructure\nmetadata:\n  tenantId: ${id}\nspec:\n  tier: basic\n`;
  }
  return files;
}

/** The `code` of the error a promise rejects with, or 'no error'. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err: unknown) {
    return String((err as { code?: unknown }).code);
  }
  return 'no error';
}
