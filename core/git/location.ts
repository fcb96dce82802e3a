/**
 * Where the repository is: an http(s) remote mirrored into `<dataDir>/repo.git`, or a local
 * repository (bare, or with a work tree) used in place.
 */
import type * as nodeFs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stalled } from '../errors.js';
import { redact } from './errors.js';

export type RepoSpec = { kind: 'remote'; url: string } | { kind: 'local'; path: string };

export interface LocalRepo {
  gitdir: string;
  /** the work tree, or null for a bare repository */
  dir: string | null;
}

/** Classify `repo`: http(s) URL, file:// URL or plain path; anything else is E_GIT_BAD_URL. */
export function parseRepoSpec(repo: string): RepoSpec {
  if (/^https?:\/\//i.test(repo)) return { kind: 'remote', url: repo.replace(/\/+$/, '') };
  if (/^file:\/\//i.test(repo)) return { kind: 'local', path: fileURLToPath(repo) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^/\s:]+:/.test(repo)) {
    throw stalled('E_GIT_BAD_URL', `unsupported repository URL ${redact(repo)}: use an http(s) URL or a local path`, {
      repo: redact(repo),
    });
  }
  return { kind: 'local', path: path.resolve(repo) };
}

async function isFile(fs: typeof nodeFs, p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isFile();
  } catch {
    return false;
  }
}

async function isDir(fs: typeof nodeFs, p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Does `gitdir` look like a git directory (HEAD file, objects/ and refs/ directories)? */
export async function looksLikeGitdir(fs: typeof nodeFs, gitdir: string): Promise<boolean> {
  return (
    (await isFile(fs, path.join(gitdir, 'HEAD'))) &&
    (await isDir(fs, path.join(gitdir, 'objects'))) &&
    (await isDir(fs, path.join(gitdir, 'refs')))
  );
}

/**
 * Find the git directory for a local path: `<path>/.git` (a directory, or a `gitdir:` file),
 * or `<path>` itself when it is a bare repository (or a `.git` directory, whose parent is then
 * the work tree). Throws E_GIT_REPO_NOT_FOUND otherwise.
 */
export async function locateLocalRepo(fs: typeof nodeFs, repoPath: string): Promise<LocalRepo> {
  const notFound = (why: string) =>
    stalled('E_GIT_REPO_NOT_FOUND', `${repoPath} is not a git repository (${why})`, { repo: repoPath });
  if (!(await isDir(fs, repoPath))) throw notFound('no such directory');

  const dotgit = path.join(repoPath, '.git');
  if (await isDir(fs, dotgit)) {
    if (await looksLikeGitdir(fs, dotgit)) return { gitdir: dotgit, dir: repoPath };
    throw notFound('.git is incomplete');
  }
  if (await isFile(fs, dotgit)) {
    const text = await fs.promises.readFile(dotgit, 'utf8');
    const m = /^gitdir:\s*(.+?)\s*$/m.exec(text);
    if (m?.[1]) {
      const gitdir = path.resolve(repoPath, m[1]);
      if (await isFile(fs, path.join(gitdir, 'commondir'))) {
        throw stalled('E_GIT_REPO_NOT_FOUND', `${repoPath} is a linked worktree, which is not supported; use the main clone`, {
          repo: repoPath,
        });
      }
      if (await looksLikeGitdir(fs, gitdir)) return { gitdir, dir: repoPath };
    }
    throw notFound('.git file does not point at a git directory');
  }
  if (await looksLikeGitdir(fs, repoPath)) {
    // A `.git` directory given directly: its parent is the work tree unless the repo is bare.
    if (path.basename(repoPath) === '.git') {
      const config = await fs.promises.readFile(path.join(repoPath, 'config'), 'utf8').catch(() => '');
      if (!/^\s*bare\s*=\s*true\s*$/im.test(config)) return { gitdir: repoPath, dir: path.dirname(repoPath) };
    }
    return { gitdir: repoPath, dir: null };
  }
  throw notFound('no .git directory and not a bare repository');
}
