/**
 * Change detection and cold load: DesiredStateLoader over GitStore (in this process; no server
 * runs here meanwhile) against native git doing the same work, interleaved run by run.
 */
import { DesiredStateLoader, type TreeReader } from '../../core/desired/loader.js';
import { GitStore } from '../../core/git/store.js';
import { git } from '../lib/git.js';
import { figure, row, type Row } from '../lib/report.js';
import { timed } from '../lib/stats.js';
import type { TenantsRepo } from './repo.js';

/** A TreeReader that counts blob reads: the loader parses exactly the blobs it reads. */
class CountingReader implements TreeReader {
  blobsRead = 0;
  constructor(private readonly inner: Required<TreeReader>) {}
  listEntries(commit: string, dir: string) {
    return this.inner.listEntries(commit, dir);
  }
  readBlob(oid: string) {
    this.blobsRead++;
    return this.inner.readBlob(oid);
  }
  readBlobsSettled(oids: readonly string[]) {
    this.blobsRead += oids.length;
    return this.inner.readBlobsSettled(oids);
  }
}

async function openStore(r: TenantsRepo, dataDir: string): Promise<GitStore> {
  return GitStore.open({ repo: r.repo, dataDir, branch: 'main' });
}

export async function changeDetection(r: TenantsRepo, dataDir: string): Promise<Row> {
  const store = await openStore(r, dataDir);
  const reader = new CountingReader(store);
  const loader = new DesiredStateLoader(reader);
  await loader.loadAll(r.head); // the daemon's steady state: everything loaded, caches warm
  const ours: number[] = [];
  const native: number[] = [];
  let maxBlobs = 0;
  let wrong = 0;
  for (const c of r.chain) {
    reader.blobsRead = 0;
    const [ms, changes] = await timed(() => loader.advance(c.commit));
    ours.push(ms);
    maxBlobs = Math.max(maxBlobs, reader.blobsRead);
    if (changes.length !== 1 || `tenants/${changes[0]?.tenantId}.yaml` !== c.path || !changes[0]?.desired?.document) wrong++;
    const n = await git(r.repo, ['diff', '--name-only', c.parent, c.commit, '--', 'tenants/']);
    native.push(n.ms);
    if (n.stdout.toString().trim() !== c.path) wrong++;
  }
  await store.close();
  const nativeFig = { ...figure(native), command: 'git diff --name-only A B -- tenants/' };
  const f = figure(ours);
  return row({
    scenario: 'change detection (1 file edited)',
    tenants: r.tenants,
    unit: 'ms',
    tenantd: f,
    native: nativeFig,
    target: '≤ 2× native',
    met: f.median <= 2 * nativeFig.median && wrong === 0 && maxBlobs <= 1,
    check: `${wrong === 0 ? 'the changed tenant found every run' : `${wrong} WRONG results`}; blobs read+parsed per change: ${maxBlobs} of ${r.tenants}`,
  });
}

/** `git ls-tree -r` then `git cat-file --batch` of the same blobs: native git reading every tenant file. */
async function nativeReadAll(r: TenantsRepo): Promise<[number, number]> {
  return timed(async () => {
    const ls = await git(r.repo, ['ls-tree', '-r', r.head, 'tenants/']);
    const oids = ls.stdout
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(/\s+/)[2]);
    const batch = await git(r.repo, ['cat-file', '--batch'], `${oids.join('\n')}\n`);
    return oids.length === 0 ? 0 : batch.stdout.length > 0 ? oids.length : 0;
  });
}

export async function coldLoad(r: TenantsRepo, dataDir: string, runs: number): Promise<Row> {
  const ours: number[] = [];
  const native: number[] = [];
  let invalid = 0;
  let loaded = 0;
  let nativeBlobs = 0;
  for (let i = 0; i < runs; i++) {
    // A new store and loader each run: nothing cached (the daemon's first poll after a start).
    const store = await openStore(r, dataDir);
    const loader = new DesiredStateLoader(store);
    const [ms, changes] = await timed(() => loader.loadAll(r.head));
    await store.close();
    ours.push(ms);
    loaded = changes.length;
    invalid = changes.filter((c) => !c.desired?.document).length;
    const [nms, blobs] = await nativeReadAll(r);
    native.push(nms);
    nativeBlobs = blobs;
  }
  const f = figure(ours);
  const nativeFig = { ...figure(native), command: 'git ls-tree -r + git cat-file --batch' };
  return row({
    scenario: 'cold load (read+parse+validate all)',
    tenants: r.tenants,
    unit: 'ms',
    tenantd: f,
    native: nativeFig,
    target: '≤ 3× native and ≤ 2000 ms',
    met: f.median <= 3 * nativeFig.median && f.median <= 2000 && invalid === 0 && loaded === r.tenants,
    check: `${loaded} loaded, ${invalid} invalid; native read ${nativeBlobs} blobs`,
  });
}
