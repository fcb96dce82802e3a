/**
 * Packing loose objects with `git gc --auto`: the repository tenantd wrote stays readable (by
 * tenantd and by git) and keeps taking commits; a missing git is reported, not fatal.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import t from 'tap';
import type { ReconciliationEvent } from '../core/events/events.js';
import { gcAuto } from '../core/git/gc.js';
import { GitStore } from '../core/git/store.js';
import { openDaemon } from './helpers/daemon.js';
import { commitFiles, git, gitOut, initRepo, removeDir, tempDir } from './helpers/git-fixtures.js';
import { tenantYaml } from './helpers/tenants.js';

const AUTHOR = { name: 'Gc Tester', email: 'gc@example.test' };

t.test('gcAuto packs what tenantd wrote; reads, commits and fsck stay good', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const repo = await initRepo(path.join(root, 'repo'), { bare: true });
  await git(repo, ['config', 'gc.auto', '20']); // pack past 20 loose objects (6,700 by default)
  const store = await GitStore.open({ repo, dataDir: root, branch: 'main' });
  t.teardown(() => store.close());
  for (let i = 0; i < 15; i++) {
    await store.commitFiles({ message: `c${i}`, author: AUTHOR, build: () => [{ path: `tenants/t-${i}.yaml`, content: `tenant ${i}\n` }] });
  }
  const r = await gcAuto(repo);
  t.equal(r.ran, true);
  if (!r.ran) return;
  t.ok(r.looseBefore >= 60, `loose objects before: ${r.looseBefore}`);
  t.ok(r.looseAfter < r.looseBefore, `after: ${r.looseAfter}`);
  t.ok(r.packs >= 1);
  const head = (await store.resolve('main')) as string;
  const files = await store.listFiles(head, 'tenants');
  t.equal(files.length, 15);
  t.same(await store.readBlobs(files.map((f) => f.oid)), files.map((f) => `tenant ${/t-(\d+)/.exec(f.path)?.[1]}\n`), 'the same store reads every file from the pack');
  const next = await store.commitFiles({ message: 'after gc', author: AUTHOR, build: () => [{ path: 'tenants/t-0.yaml', content: 'changed\n' }] });
  t.ok(next, 'and commits on top');
  t.equal(await gitOut(repo, ['show', 'main:tenants/t-0.yaml']), 'changed');
  await git(repo, ['fsck', '--strict']);
  await git(repo, ['config', 'gc.auto', '0']); // the operator's opt-out
  for (let i = 0; i < 8; i++) await store.commitFiles({ message: `d${i}`, author: AUTHOR, build: () => [{ path: `tenants/d-${i}.yaml`, content: `d ${i}\n` }] });
  const off = await gcAuto(repo);
  t.ok(off.ran && off.looseAfter === off.looseBefore && off.looseBefore >= 32, 'gc.auto 0: nothing packed');
  t.same(await gcAuto(repo, () => Promise.reject(Object.assign(new Error('spawn git ENOENT'), { code: 'ENOENT' }))), { ran: false, reason: 'no git executable on PATH' });
  await t.rejects(gcAuto(path.join(root, 'not-a-repo')), { code: 'E_GIT_GC', kind: 'retryable' });
});

t.test('the daemon packs on its schedule and reports it as an event', async (t) => {
  const root = await tempDir();
  t.teardown(() => removeDir(root));
  const repo = await initRepo(path.join(root, 'repo'));
  // `git gc --auto` estimates the loose objects from objects/17/ alone (its count × 256): a few
  // objects may all miss that directory and never trigger it. So the fixture holds one blob whose
  // id starts with 17, and any count above gc.auto 1 is then certain.
  await git(repo, ['config', 'gc.auto', '1']);
  const files: Record<string, string> = { 'notes/pad.txt': blobStartingWith17() };
  for (let i = 0; i < 12; i++) files[`tenants/t-${String(i).padStart(2, '0')}.yaml`] = tenantYaml(`t-${String(i).padStart(2, '0')}`);
  await commitFiles(repo, files, 'twelve tenants');
  const { daemon } = await openDaemon(repo, path.join(root, 'data'), ['--gc-interval', '1']);
  const events: ReconciliationEvent[] = [];
  daemon.publisher.subscribe((e) => events.push(e));
  await daemon.start();
  await daemon.whenIdle();
  const deadline = Date.now() + 10_000;
  while (!events.some((e) => e.type === 'RepositoryPacked' || e.type === 'RepositoryPackFailed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await daemon.stop();
  const packed = events.find((e) => e.type === 'RepositoryPacked');
  t.ok(packed, 'a RepositoryPacked event');
  if (packed?.type === 'RepositoryPacked') t.ok(packed.looseAfter < packed.looseBefore, `${packed.looseBefore} → ${packed.looseAfter} loose objects`);
  t.equal(await gitOut(repo, ['status', '--porcelain']), '', 'the work tree is untouched');
  await git(repo, ['fsck']);
});

/** File content whose git blob id starts with "17" (about 256 tries). */
function blobStartingWith17(): string {
  for (let i = 0; ; i++) {
    const content = `pad ${i}\n`;
    if (createHash('sha1').update(`blob ${Buffer.byteLength(content)}\0${content}`).digest('hex').startsWith('17')) return content;
  }
}
