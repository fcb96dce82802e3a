/**
 * Synthetic tenants repositories, written with `git fast-import` (one process, one pack: a
 * 10,000-file commit in about a second). Bare, like the mirror tenantd keeps of a remote.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fastImport, git, gitOut } from '../lib/git.js';
import { tenantId, tenantPath, tenantYaml } from '../lib/tenants.js';

export const CHAIN_BRANCH = 'bench-chain';

export interface TenantsRepo {
  /** the bare repository */
  repo: string;
  tenants: number;
  /** head of `main`: N tenant files */
  head: string;
  /** `bench-chain`: commits after `head`, each editing one tenant file (for change detection) */
  chain: Array<{ commit: string; parent: string; path: string }>;
  /** ms `git fast-import` took */
  generateMs: number;
}

/** The index of the tenant edited by the k-th chain commit (spread over the fleet). */
export const chainTenant = (k: number, n: number): number => (k * 7919 + 13) % n;

export async function createTenantsRepo(root: string, n: number, chainLength: number): Promise<TenantsRepo> {
  const repo = path.join(root, `tenants-${n}.git`);
  await fsp.mkdir(repo, { recursive: true });
  await git(repo, ['init', '-q', '--bare', '--initial-branch=main']);
  function* files(): Generator<[string, string]> {
    for (let i = 0; i < n; i++) yield [tenantPath(tenantId(i)), tenantYaml(i)];
  }
  const t0 = performance.now();
  await fastImport(repo, [{ ref: 'refs/heads/main', message: `${n} tenants\n`, files: files() }]);
  const generateMs = performance.now() - t0;
  const edits = Array.from({ length: chainLength }, (_, k) => chainTenant(k + 1, n));
  await fastImport(
    repo,
    edits.map((i, k) => ({
      ref: `refs/heads/${CHAIN_BRANCH}`,
      ...(k === 0 ? { from: 'refs/heads/main' } : {}),
      message: `edit ${tenantId(i)}\n`,
      files: [[tenantPath(tenantId(i)), tenantYaml(i, k + 1)]] as Array<[string, string]>,
    })),
  );
  const head = await gitOut(repo, ['rev-parse', 'refs/heads/main']);
  const commits = chainLength === 0 ? [] : (await gitOut(repo, ['rev-list', '--reverse', `${head}..${CHAIN_BRANCH}`])).split('\n');
  const chain = commits.map((commit, k) => ({ commit, parent: k === 0 ? head : (commits[k - 1] as string), path: tenantPath(tenantId(edits[k] as number)) }));
  return { repo, tenants: n, head, chain, generateMs };
}

/** A copy of a repository (each full-reconcile run starts from the same pristine one). */
export async function copyRepo(src: string, dest: string): Promise<string> {
  await fsp.cp(src, dest, { recursive: true });
  return dest;
}
