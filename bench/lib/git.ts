/**
 * Native git for the benchmark: always asynchronous child processes (a daemon or HTTP server may
 * run in this process or talk to it; a synchronous child would block the event loop), always with
 * `-c gc.auto=0` (isomorphic-git leaves loose objects behind; a background gc would skew the
 * timings), and with a fixed identity so nothing depends on the user's git config.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

const BASE = ['-c', 'gc.auto=0', '-c', 'core.autocrlf=false', '-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false'];

function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GIT_')) delete env[k];
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_CONFIG_NOSYSTEM = '1';
  env.GIT_AUTHOR_NAME = env.GIT_COMMITTER_NAME = 'Bench Author';
  env.GIT_AUTHOR_EMAIL = env.GIT_COMMITTER_EMAIL = 'bench@example.test';
  return env;
}

export interface GitRun {
  stdout: Buffer;
  /** Wall time from spawn to exit, ms. */
  ms: number;
}

/**
 * Run `git <args>` in `cwd`; `input` is written to stdin (a string, a buffer, or a function that
 * writes to the stream and ends it). Rejects with stderr when git fails.
 */
export function git(cwd: string, args: string[], input?: string | Buffer | ((stdin: NodeJS.WritableStream) => Promise<void>)): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('git', [...BASE, ...args], { cwd, env: gitEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) {
        reject(new Error(`git ${args.join(' ')} (in ${cwd}) exited ${code}: ${Buffer.concat(err).toString().trim()}`));
        return;
      }
      resolve({ stdout: Buffer.concat(out), ms });
    });
    child.stdin.on('error', () => undefined); // an early exit is reported through 'close'
    if (typeof input === 'function') {
      input(child.stdin).catch((e: unknown) => {
        child.kill();
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    } else {
      child.stdin.end(input ?? '');
    }
  });
}

export async function gitOut(cwd: string, args: string[]): Promise<string> {
  return (await git(cwd, args)).stdout.toString('utf8').trim();
}

/** Write `chunk` and wait for the stream to drain when its buffer is full. */
export function writeChunk(stream: NodeJS.WritableStream, chunk: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = stream.write(chunk, (err) => (err ? reject(err) : undefined));
    if (ok) resolve();
    else stream.once('drain', () => resolve());
  });
}

export interface FastImportCommit {
  /** Full ref the commit goes to, e.g. `refs/heads/main`. */
  ref: string;
  /** The parent: a ref or sha (`from`); omitted for the first commit of a new branch. */
  from?: string;
  message: string;
  /** Repo-relative path → content (string) or null to delete. */
  files: Iterable<[string, string | null]>;
  /** Drop every file of the parent first (`deleteall`). */
  deleteAll?: boolean;
}

/**
 * Make commits with `git fast-import` (the quickest way to write a commit of 10,000 files): one
 * process, one pack, refs updated at the end (non-fast-forward updates are refused).
 */
export async function fastImport(gitdir: string, commits: FastImportCommit[], when = Math.floor(Date.now() / 1000)): Promise<GitRun> {
  return git(gitdir, ['fast-import', '--quiet', '--done'], async (stdin) => {
    let t = when;
    for (const c of commits) {
      const header = [`commit ${c.ref}`, `committer Bench Author <bench@example.test> ${t++} +0000`, `data ${Buffer.byteLength(c.message)}`, c.message];
      if (c.from) header.push(`from ${c.from}`);
      if (c.deleteAll) header.push('deleteall');
      await writeChunk(stdin, `${header.join('\n')}\n`);
      let batch = '';
      for (const [p, content] of c.files) {
        if (content === null) batch += `D ${p}\n`;
        else batch += `M 100644 inline ${p}\ndata ${Buffer.byteLength(content)}\n${content}\n`;
        if (batch.length > 1 << 20) {
          await writeChunk(stdin, batch);
          batch = '';
        }
      }
      await writeChunk(stdin, `${batch}\n`);
    }
    await writeChunk(stdin, 'done\n');
    stdin.end();
  });
}

/** `git --version`, for the machine description. */
export async function gitVersion(): Promise<string> {
  return (await gitOut(process.cwd(), ['--version'])).replace(/^git version /, '');
}
