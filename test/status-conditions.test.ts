/**
 * The README's status table is the contract: each row is produced here by driving a real
 * reconciler (store and log on disk, a scripted provider) into that situation, and the record's
 * conditions and observedGeneration must be exactly what the row says. Every status has a row,
 * every row a scenario, so the README cannot drift from computeConditions. Each record's status
 * file is also checked against schemas/status.schema.json.
 */
import { promises as fsp } from 'node:fs';
import t, { type Test } from 'tap';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import statusSchema from '../schemas/status.schema.json' with { type: 'json' };
import { STATUSES, type TenantStatus } from '../core/phases.js';
import type { TenantRecord } from '../core/state/record.js';
import { reasonForCode } from '../core/status/conditions.js';
import { renderStatusFile } from '../core/status/status-file.js';
import type { ErrorKind } from '../core/errors.js';
import { ScriptedProvider } from './helpers/fake-provider.js';
import { reconcilerHarness, type ReconcilerHarness } from './helpers/reconciler.js';
import { desiredOf, tenantDoc } from './helpers/tenants.js';

interface Row {
  status: string;
  when: string;
  ready: string;
  reconciling: string;
  stalled: string;
  observed: string;
}

async function readmeTable(): Promise<Row[]> {
  const readme = await fsp.readFile(new URL('../README.md', import.meta.url), 'utf8');
  const header = '| status | when | Ready | Reconciling | Stalled | observedGeneration |';
  const start = readme.indexOf(header);
  if (start < 0) throw new Error(`README.md has no status table (${header})`);
  const lines = readme.slice(start).split('\n');
  const rows: Row[] = [];
  for (const line of lines.slice(2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    const [status, when, ready, reconciling, stalled, observed] = cells as [string, string, string, string, string, string];
    rows.push({ status, when, ready, reconciling, stalled, observed });
  }
  return rows;
}

type Harness = ReconcilerHarness<ScriptedProvider>;
/** Drives tenant `id` into a row's situation and returns its record as the store holds it then. */
type Scenario = (h: Harness, id: string, code: string | null) => Promise<TenantRecord>;

const create = (h: Harness, id: string, spec: Parameters<typeof tenantDoc>[1] = {}) =>
  h.reconciler.reconcile({ tenantId: id, desired: desiredOf(tenantDoc(id, spec), 'c1'), commit: 'c1', trigger: 'commit:c1' });
const update = (h: Harness, id: string, spec: Parameters<typeof tenantDoc>[1]) =>
  h.reconciler.reconcile({ tenantId: id, desired: desiredOf(tenantDoc(id, spec), 'c2'), commit: 'c2', trigger: 'commit:c2' });
const recordOf = (h: Harness, id: string): TenantRecord => {
  const r = h.store.get(id);
  if (!r) throw new Error(`no record for ${id}`);
  return structuredClone(r);
};

/** The record as it is while `step` of the provider runs (a reconcile in progress). */
async function during(h: Harness, id: string, step: 'apply' | 'destroy', run: () => Promise<unknown>): Promise<TenantRecord> {
  let seen: TenantRecord | null = null;
  h.provider.hook = async (s, ctx) => {
    if (s === step && ctx.tenantId === id) seen ??= recordOf(h, id);
  };
  await run();
  h.provider.hook = null;
  if (!seen) throw new Error(`${step} never ran for ${id}`);
  return seen;
}

async function failing(h: Harness, id: string, step: 'plan' | 'apply' | 'verify', kind: ErrorKind, code: string | null): Promise<TenantRecord> {
  if (!code) throw new Error('this row must name the error code in its "when" cell');
  h.provider.failNext(step, 1, kind, code);
  await create(h, id);
  return recordOf(h, id);
}

/** Tenants the mass-deletion breaker holds in these scenarios. */
const HELD = new Set<string>();

const SCENARIOS: Record<string, Scenario> = {
  'PENDING | known, not reconciled yet': async (h, id) => {
    await h.reconciler.requestReconcile(id, '2026-11-28T12:00:00.000Z');
    return recordOf(h, id);
  },
  'PROVISIONING | walking the phases': (h, id) => during(h, id, 'apply', () => create(h, id)),
  'PROVISIONING | waiting on a dependency (`E_CLUSTER_UNREACHABLE`)': (h, id, code) => failing(h, id, 'plan', 'waiting', code),
  'UPDATING | walking the phases': async (h, id) => {
    await create(h, id);
    return during(h, id, 'apply', () => update(h, id, { region: 'us-west-2' }));
  },
  'UPDATING | retrying after a failed attempt': async (h, id) => {
    await create(h, id);
    h.provider.failNext('apply', 1);
    const out = await update(h, id, { region: 'us-west-2' });
    if (out.kind !== 'retry') throw new Error(`expected a retry, got ${out.kind}`);
    h.clock.ms = out.at.getTime();
    return during(h, id, 'apply', () => update(h, id, { region: 'us-west-2' }));
  },
  'DEPROVISIONING | walking the phases': async (h, id) => {
    await create(h, id);
    return during(h, id, 'destroy', () => h.reconciler.reconcile({ tenantId: id, desired: null, commit: 'c2', trigger: 'commit:c2' }));
  },
  'ACTIVE | the current spec is applied': async (h, id) => {
    await create(h, id);
    return recordOf(h, id);
  },
  'ACTIVE | file removed, `deletionProtection: true`': async (h, id) => {
    await create(h, id, { deletionProtection: true });
    await h.reconciler.reconcile({ tenantId: id, desired: null, commit: 'c2', trigger: 'commit:c2' });
    return recordOf(h, id);
  },
  'ACTIVE | file removed in a change the mass-deletion breaker holds': async (h, id) => {
    await create(h, id);
    HELD.add(id);
    await h.reconciler.reconcile({ tenantId: id, desired: null, commit: 'c2', trigger: 'commit:c2' });
    return recordOf(h, id);
  },
  'PROVISIONING | the plan awaits approval (`approval: manual`)': async (h, id) => {
    await create(h, id, { approval: 'manual' });
    return recordOf(h, id);
  },
  'DEPROVISIONED | everything removed': async (h, id) => {
    await create(h, id);
    await h.reconciler.reconcile({ tenantId: id, desired: null, commit: 'c2', trigger: 'commit:c2' });
    return recordOf(h, id);
  },
  'FAILED | a retry is scheduled (`E_ROLLOUT_FAILED`)': (h, id, code) => failing(h, id, 'verify', 'retryable', code),
  'FAILED | a stalled error (`E_FIELD_CONFLICT`)': (h, id, code) => failing(h, id, 'apply', 'stalled', code),
  'SUSPENDED | suspended after it was applied': async (h, id) => {
    await create(h, id);
    await update(h, id, { suspend: true });
    return recordOf(h, id);
  },
  'SUSPENDED | suspended before it was applied': async (h, id) => {
    await create(h, id, { suspend: true });
    return recordOf(h, id);
  },
  'INVALID | the file does not validate': async (h, id) => {
    await create(h, id);
    const issues = [{ file: `tenants/${id}.yaml`, line: 3, column: 5, path: 'spec.tier', message: 'must be one of: starter, professional, enterprise' }];
    await h.reconciler.reconcile({
      tenantId: id,
      desired: { tenantId: id, file: `tenants/${id}.yaml`, commit: 'c2', blobOid: 'b'.repeat(40), specDigest: null, document: null, issues },
      commit: 'c2',
      trigger: 'commit:c2',
    });
    return recordOf(h, id);
  },
};

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
addFormats.default(ajv);
const validateStatus = ajv.compile(statusSchema);

const cell = (c: { status: string; reason: string } | undefined): string => (c ? `${c.status} \`${c.reason}\`` : '(missing)');

t.test('the README status table: every status has a row, every row a scenario', async (t) => {
  const rows = await readmeTable();
  const keys = rows.map((r) => `${r.status} | ${r.when}`);
  t.same([...new Set(rows.map((r) => r.status))].sort(), [...STATUSES].sort(), 'every status, and nothing else, is in the table');
  t.same([...keys].sort(), Object.keys(SCENARIOS).sort(), 'the table rows are exactly the scenarios this test drives');
});

t.test('each README row is what the reconciler shows, and its status file fits the schema', async (t) => {
  const rows = await readmeTable();
  for (const [i, row] of rows.entries()) {
    await t.test(`${row.status}: ${row.when}`, async (t: Test) => {
      const scenario = SCENARIOS[`${row.status} | ${row.when}`];
      if (!scenario) return t.fail('no scenario for this row');
      const h = await reconcilerHarness(t, undefined, new ScriptedProvider(), {
        deletionGate: (id) => (HELD.has(id) ? { kind: 'held', message: 'held by the mass-deletion breaker' } : { kind: 'allowed' }),
      });
      const code = /`(E_[A-Z0-9_]+)`/.exec(row.when)?.[1] ?? null;
      const record = await scenario(h, `t${i}`, code);
      t.equal(record.status, row.status as TenantStatus);
      const [ready, reconciling, stalled] = record.conditions;
      t.same(
        [ready?.type, reconciling?.type, stalled?.type],
        ['Ready', 'Reconciling', 'Stalled'],
        'three conditions, in order',
      );
      t.equal(cell(ready), row.ready, 'Ready');
      t.equal(cell(reconciling), row.reconciling, 'Reconciling');
      t.equal(cell(stalled), row.stalled, 'Stalled');
      for (const c of record.conditions) t.match(c.reason, /^[A-Z][A-Za-z0-9]*$/, `${c.type}: a CamelCase reason`);
      if (code) t.ok(record.conditions.some((c) => c.code === code), `the code ${code} is kept in a condition`);
      const observed = record.observed?.generation ?? 0;
      if (row.observed === '0') {
        t.equal(observed, 0, 'nothing observed yet');
      } else {
        t.ok(record.generation >= 1, 'the file was counted');
        t.equal(observed === record.generation ? '= generation' : observed < record.generation ? 'behind' : 'ahead', row.observed, 'observedGeneration');
      }

      const doc = parseYaml(renderStatusFile(record)) as { metadata: { generation: number }; status: { observedGeneration: number; phase: string | null } };
      t.ok(validateStatus(doc), `the status file fits the schema: ${ajv.errorsText(validateStatus.errors)}`);
      t.equal(doc.metadata.generation, record.generation);
      t.equal(doc.status.observedGeneration, observed);
      if (row.status === 'INVALID') t.equal(doc.status.phase, null, 'INVALID has no phase (never INVALID/Complete)');
    });
  }
});

t.test('reasons from error codes are CamelCase; the code stays machine-readable', async (t) => {
  t.equal(reasonForCode('E_CLUSTER_UNREACHABLE'), 'ClusterUnreachable');
  t.equal(reasonForCode('E_FIELD_CONFLICT'), 'FieldConflict');
  t.equal(reasonForCode('E_PROVIDER'), 'ProviderFailed');
  t.equal(reasonForCode('E_PROVIDER:ENOENT'), 'ProviderFailed', 'a wrapped foreign error takes its prefix');
  t.equal(reasonForCode('E_GIT_FETCH:ECONNRESET'), 'GitFetch');
  t.equal(reasonForCode('E_PULUMI_CLI_MISSING'), 'PulumiCliMissing');
  t.equal(reasonForCode('weird code'), 'ReconciliationFailed', 'anything that is no code gets a generic reason');
});
