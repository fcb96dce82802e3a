/**
 * Plans approved by digest, end to end: a real repository, the render provider (real plans against
 * files on disk, so drift is real), the API over HTTP, and `tenantd plan`.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { ReconciliationEvent } from '../core/events/events.js';
import type { TenantRecord } from '../core/state/record.js';
import { parseCommand } from '../daemon/args.js';
import { formatPlan, PLAN_COMMAND, planArgsFrom, planCommand } from '../daemon/plan-command.js';
import { apiHarness, type ApiHarness } from './helpers/api.js';
import { commitFiles } from './helpers/git-fixtures.js';
import { tenantYaml } from './helpers/tenants.js';

const cond = (r: TenantRecord | undefined, type: string): { status: string; reason: string; message: string } | undefined => r?.conditions.find((c) => c.type === type);
const T = '/api/v1/infrastructure/tenants';

async function renderedFiles(h: ApiHarness, id: string): Promise<string[]> {
  const root = path.join(h.daemon.config.dataDir, 'rendered', id);
  const out: string[] = [];
  for (const group of await fsp.readdir(root).catch(() => [] as string[])) {
    for (const f of await fsp.readdir(path.join(root, group))) out.push(`${group}/${f}`);
  }
  return out.sort();
}

t.test('approval: manual: Apply waits for the plan digest; a stale digest is 409, a fresh one applies exactly the plan shown', async (t) => {
  const h = await apiHarness(t, {
    files: { 'tenants/gated.yaml': tenantYaml('gated', { approval: 'manual' }), 'tenants/free.yaml': tenantYaml('free') },
  });
  const events: ReconciliationEvent[] = [];
  h.daemon.publisher.subscribe((e) => events.push(e));
  t.equal(h.daemon.store.get('free')?.status, 'ACTIVE', 'a tenant without approval applies at once');
  const waiting = h.daemon.store.get('gated');
  t.equal(waiting?.status, 'PROVISIONING');
  t.equal(waiting?.phase, 'Plan', 'stopped before Apply');
  t.match(cond(waiting, 'Reconciling'), { status: 'True', reason: 'AwaitingApproval' });
  t.match(cond(waiting, 'Stalled'), { status: 'False' }, 'waiting for a person is not a stall');
  t.same(await renderedFiles(h, 'gated'), [], 'nothing applied');
  const digest = waiting?.lastPlan?.digest as string;
  t.match(digest, /^sha256:[0-9a-f]{64}$/);
  t.match(cond(waiting, 'Reconciling')?.message, digest, 'the condition names the digest to approve');

  // `tenantd plan` shows the same digest for the same change.
  const parsed = parseCommand(PLAN_COMMAND, ['--repo', h.repo]);
  if (parsed.help) throw new Error('--help was not asked for');
  const report = await planCommand(planArgsFrom(parsed.values, {}, '/'));
  const text = formatPlan(report, 'text', { repo: h.repo, root: h.repo, version: 'test' });
  t.equal(report.tenants.find((x) => x.tenantId === 'gated')?.planDigest, digest, 'tenantd plan computes the digest the daemon waits for');
  t.match(text, `tenant gated: create\n`);
  t.match(text, `  plan digest: ${digest}\n`);

  const entity = await h.call('GET', `${T}/gated`);
  t.match(entity.body, { lastPlan: { digest }, conditions: [{}, { type: 'Reconciling', reason: 'AwaitingApproval' }, {}] }, 'the API shows it');

  // Refusals.
  const other = `sha256:${'0'.repeat(64)}`;
  t.match(await h.call('POST', `${T}/gated/approve`, { body: { planDigest: other } }), { status: 409, body: { code: 'E_PLAN_DIGEST_STALE' } });
  t.match(await h.call('POST', `${T}/gated/approve`, { token: 'reader', body: { planDigest: digest } }), { status: 403 });
  t.match(await h.call('POST', `${T}/gated/approve`, { body: { planDigest: 'abc' } }), { status: 422, body: { code: 'E_VALIDATION' } });
  t.match(await h.call('POST', `${T}/free/approve`, { body: { planDigest: digest } }), { status: 409, body: { code: 'E_NOT_AWAITING_APPROVAL' } });
  t.match(await h.call('POST', `${T}/nobody/approve`, { body: { planDigest: digest } }), { status: 404 });
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get('gated')?.phase, 'Plan', 'still waiting');

  const ok = await h.call('POST', `${T}/gated/approve`, { token: 'writer', body: { planDigest: digest } });
  t.equal(ok.status, 202);
  t.match(ok.body, { tenantId: 'gated', planDigest: digest, operation: 'create', trigger: /^approve:/ });
  await h.daemon.whenIdle();
  const done = h.daemon.store.get('gated');
  t.equal(done?.status, 'ACTIVE');
  const apply = (await h.daemon.log.read('gated')).find((x) => x.toState === 'PROVISIONING/Apply');
  t.match(apply, { trigger: ok.body.trigger, details: { approvedPlan: digest, approvedBy: 'walt' } }, 'Apply names the approved plan and who approved it');
  const planned = (waiting?.lastPlan?.changes ?? []).map((c) => c.action);
  t.ok(planned.length > 0 && planned.every((a) => a === 'create'));
  t.equal((await renderedFiles(h, 'gated')).length, planned.length, 'exactly the objects the plan listed were created');
  t.equal(events.filter((e) => e.type === 'PlanApproved').length, 1);
});

t.test('a new commit, or drift since the plan, voids an approval', async (t) => {
  const h = await apiHarness(t, { files: { 'tenants/gated.yaml': tenantYaml('gated', { approval: 'manual' }) } });
  const first = h.daemon.store.get('gated')?.lastPlan?.digest as string;
  t.equal((await h.call('POST', `${T}/gated/approve`, { body: { planDigest: first } })).status, 202);
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get('gated')?.status, 'ACTIVE');

  // Two commits before anyone approves: the first plan's digest is stale.
  await commitFiles(h.repo, { 'tenants/gated.yaml': tenantYaml('gated', { approval: 'manual', configuration: { databaseSize: 'db.t3.medium', storageGb: 60, enableHa: false } }) }, 'grow to 60');
  await h.daemon.poll();
  await h.daemon.whenIdle();
  const d60 = h.daemon.store.get('gated')?.lastPlan?.digest as string;
  t.match(cond(h.daemon.store.get('gated'), 'Reconciling'), { reason: 'AwaitingApproval' });
  await commitFiles(h.repo, { 'tenants/gated.yaml': tenantYaml('gated', { approval: 'manual', configuration: { databaseSize: 'db.t3.medium', storageGb: 70, enableHa: false } }) }, 'grow to 70');
  await h.daemon.poll();
  await h.daemon.whenIdle();
  const d70 = h.daemon.store.get('gated')?.lastPlan?.digest as string;
  t.not(d70, d60);
  const stale = await h.call('POST', `${T}/gated/approve`, { body: { planDigest: d60 } });
  t.match(stale, { status: 409, body: { code: 'E_PLAN_DIGEST_STALE' } }, 'the digest of a superseded commit is refused');
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get('gated')?.applied?.document.spec.configuration.storageGb, 50, 'nothing applied');

  // Drift between the plan and the approval: someone edits what was rendered.
  const pvc = (await renderedFiles(h, 'gated')).find((f) => f.startsWith('1-apply/') && /persistentvolumeclaim/i.test(f)) as string;
  t.ok(pvc, 'a rendered PVC to tamper with');
  await fsp.rm(path.join(h.daemon.config.dataDir, 'rendered', 'gated', pvc));
  const events: ReconciliationEvent[] = [];
  h.daemon.publisher.subscribe((e) => events.push(e));
  t.equal((await h.call('POST', `${T}/gated/approve`, { body: { planDigest: d70 } })).status, 202, 'accepted: it is the plan shown');
  await h.daemon.whenIdle();
  const after = h.daemon.store.get('gated');
  t.equal(after?.applied?.document.spec.configuration.storageGb, 50, 'not applied: the plan came out different');
  t.match(cond(after, 'Reconciling'), { status: 'True', reason: 'AwaitingApproval', message: /changed since/ });
  const d70b = after?.lastPlan?.digest as string;
  t.not(d70b, d70, 'a new digest for the plan as it is now');
  t.match(after?.lastPlan?.changes.find((c) => c.ref.includes('PersistentVolumeClaim')), { action: 'create' }, 'the new plan shows the drift');
  t.match(events.filter((e) => e.type === 'ApprovalRequired'), [{ planDigest: d70b, reason: 'plan changed since approval' }]);
  t.match(await h.call('POST', `${T}/gated/approve`, { body: { planDigest: d70 } }), { status: 409, body: { code: 'E_PLAN_DIGEST_STALE' } }, 'the voided digest stays refused');

  t.equal((await h.call('POST', `${T}/gated/approve`, { body: { planDigest: d70b } })).status, 202);
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get('gated')?.applied?.document.spec.configuration.storageGb, 70, 'the approved plan is applied');
  t.equal(h.daemon.store.get('gated')?.status, 'ACTIVE');
});

t.test('--approval-tiers gates a whole tier, its deprovisions too (which need tenants:delete to approve)', async (t) => {
  const h = await apiHarness(t, {
    flags: ['--approval-tiers', 'enterprise'],
    files: { 'tenants/big.yaml': tenantYaml('big', { tier: 'enterprise' }), 'tenants/small.yaml': tenantYaml('small') },
  });
  t.equal(h.daemon.store.get('small')?.status, 'ACTIVE');
  t.match(cond(h.daemon.store.get('big'), 'Reconciling'), { reason: 'AwaitingApproval' });
  const create = h.daemon.store.get('big')?.lastPlan?.digest as string;
  t.equal((await h.call('POST', `${T}/big/approve`, { body: { planDigest: create } })).status, 202);
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get('big')?.status, 'ACTIVE');

  await commitFiles(h.repo, { 'tenants/big.yaml': null }, 'retire big');
  await h.daemon.poll();
  await h.daemon.whenIdle();
  const removing = h.daemon.store.get('big');
  t.equal(removing?.status, 'DEPROVISIONING', 'the deprovision is planned');
  t.match(cond(removing, 'Reconciling'), { reason: 'AwaitingApproval' });
  t.ok(await fsp.stat(path.join(h.daemon.config.dataDir, 'rendered', 'big')), 'and nothing destroyed yet');
  const destroy = removing?.lastPlan?.digest as string;
  t.match(await h.call('POST', `${T}/big/approve`, { token: 'writer', body: { planDigest: destroy } }), { status: 403, body: { code: 'E_FORBIDDEN_SCOPE' } });
  t.equal((await h.call('POST', `${T}/big/approve`, { body: { planDigest: destroy } })).status, 202);
  await h.daemon.whenIdle();
  t.equal(h.daemon.store.get('big')?.status, 'DEPROVISIONED');
});

t.test('--approval-tiers: an unknown tier is E_CONFIG', async (t) => {
  const { parseDaemonConfig } = await import('../daemon/config.js');
  t.same(parseDaemonConfig(['--approval-tiers', 'enterprise, starter'], {}, '/').approvalTiers, ['enterprise', 'starter']);
  t.same(parseDaemonConfig([], {}, '/').approvalTiers, []);
  t.throws(() => parseDaemonConfig(['--approval-tiers', 'gold'], {}, '/'), { code: 'E_CONFIG' });
});
