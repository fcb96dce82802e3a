/**
 * Packing a repository's loose objects with native git. tenantd writes loose objects (big trees
 * uncompressed, see tree-write.ts) and packs nothing itself, so a busy daemon's repository grows by
 * every commit's trees until something packs them. Once there are more loose objects than the
 * repository's `gc.auto` (6,700 by default; `git config gc.auto 0` turns this off), they are
 * packed with `git repack -d` (an incremental pack of the loose objects); then `git gc --auto`
 * does what git would (merging packs past gc.autoPackLimit, pruning old unreachable objects).
 * `git gc --auto` alone is not enough: it estimates loose objects from one of 256 directories.
 * Safe while tenantd reads and writes: the object reader rescans packs when one appears or
 * vanishes, and git takes its own locks.
 */
import { execFile } from 'node:child_process';
import { retryable } from '../errors.js';

/** Runs git with `args`; resolves with stdout; rejects with the error (ENOENT when git is missing). */
export type RunGit = (args: string[]) => Promise<string>;

export const runNativeGit: RunGit = (args) =>
  new Promise((resolve, reject) => {
    execFile('git', args, { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr: String(stderr) }));
      else resolve(String(stdout));
    });
  });

export type GcOutcome = { ran: true; looseBefore: number; looseAfter: number; packs: number; durationMs: number } | { ran: false; reason: string };

/** `count: 12` … from `git count-objects -v`. */
function counts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z-]+):\s*(\d+)$/.exec(line.trim());
    if (m) out[m[1] as string] = Number(m[2]);
  }
  return out;
}

const DEFAULT_GC_AUTO = 6700;

/** The repository's gc.auto (git's default when unset). */
async function gcAutoLimit(git: RunGit): Promise<number> {
  try {
    const v = Number((await git(['config', '--get', 'gc.auto'])).trim());
    return Number.isFinite(v) ? v : DEFAULT_GC_AUTO;
  } catch (err: unknown) {
    if ((err as { code?: unknown }).code === 1) return DEFAULT_GC_AUTO; // unset
    throw err;
  }
}

/** Pack `gitdir`'s loose objects when there are more than its gc.auto, with the counts before and after. */
export async function gcAuto(gitdir: string, run: RunGit = runNativeGit, now: () => number = Date.now): Promise<GcOutcome> {
  const git = (args: string[]) => run([`--git-dir=${gitdir}`, ...args]);
  let before: Record<string, number>;
  try {
    before = counts(await git(['count-objects', '-v']));
  } catch (err: unknown) {
    if ((err as { code?: unknown }).code === 'ENOENT') return { ran: false, reason: 'no git executable on PATH' };
    throw gcError(gitdir, err);
  }
  const started = now();
  try {
    const limit = await gcAutoLimit(git);
    if (limit > 0 && (before.count ?? 0) > limit) await git(['repack', '-d', '-q']);
    await git(['gc', '--auto', '--quiet']);
    const after = counts(await git(['count-objects', '-v']));
    return { ran: true, looseBefore: before.count ?? 0, looseAfter: after.count ?? 0, packs: after.packs ?? 0, durationMs: now() - started };
  } catch (err: unknown) {
    throw gcError(gitdir, err);
  }
}

function gcError(gitdir: string, err: unknown) {
  const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
  const message = stderr || (err instanceof Error ? err.message : String(err));
  return retryable('E_GIT_GC', `git gc in ${gitdir} failed: ${message}`, { gitdir }, err);
}
