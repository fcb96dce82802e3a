/**
 * What tenantd owns in a live object (server-side apply's fieldsV1) and whether it changed, and
 * object identity across versions in the inventory. Pure functions; the real-server behaviour is in
 * kubernetes-provider.test.ts.
 */
import t from 'tap';
import { changedPaths } from '../providers/kubernetes/compare.js';
import type { LiveObject } from '../providers/kubernetes/client.js';
import { applyFingerprint } from '../providers/kubernetes/apply-fingerprint.js';
import { emptyInventory, identityKey, inventoryObject, normalizeRefs, parseFingerprints } from '../providers/kubernetes/inventory.js';
import { fieldsOwnedBy, ownedFieldChanges, projectFields, unionFields, type FieldSet } from '../providers/kubernetes/owned-fields.js';

const owned: FieldSet = {
  'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
  'f:spec': {
    'f:replicas': {},
    'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {} } } } },
    'f:finalizers': { 'v:"example.com/a"': {} },
    'f:ports': { 'i:0': { 'f:port': {} } },
  },
};

function deployment(over: { replicas?: number; image?: string; sidecar?: string; annotation?: string; status?: number; managers?: unknown[] } = {}): LiveObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      namespace: 'n',
      labels: { app: 'web' },
      ...(over.annotation ? { annotations: { 'other.io/x': over.annotation } } : {}),
      managedFields: over.managers ?? [
        { manager: 'tenantd', operation: 'Apply', fieldsV1: owned },
        { manager: 'kube-controller-manager', operation: 'Update', subresource: 'status', fieldsV1: { 'f:status': {} } },
      ],
      resourceVersion: String(over.status ?? 1),
    },
    spec: {
      replicas: over.replicas ?? 2,
      template: { spec: { containers: [{ name: 'web', image: over.image ?? 'nginx:1' }, ...(over.sidecar ? [{ name: 'sidecar', image: over.sidecar }] : [])] } },
      finalizers: ['example.com/a', 'example.com/b'],
      ports: [{ port: 80, name: 'x' }],
    },
    status: { readyReplicas: over.status ?? 0 },
  };
}

t.test('projection keeps exactly the owned fields: maps by f:, lists by k:, v: and i:', async (t) => {
  t.same(projectFields(deployment(), owned), {
    metadata: { labels: { app: 'web' } },
    spec: {
      replicas: 2,
      template: { spec: { containers: [{ name: 'web', image: 'nginx:1' }] } },
      finalizers: ['example.com/a'],
      ports: [{ port: 80 }],
    },
  });
  t.same(unionFields({ 'f:a': {} }, { 'f:b': { 'f:c': {} } }), { 'f:a': {}, 'f:b': { 'f:c': {} } });
  t.same(fieldsOwnedBy(deployment(), 'tenantd'), owned);
  t.equal(fieldsOwnedBy(deployment(), 'someone'), undefined);
  t.equal(fieldsOwnedBy(null, 'tenantd'), undefined);
});

t.test('a change is a change of an owned field, never a controller’s write elsewhere', async (t) => {
  const base = deployment();
  // Status, another manager's annotation, a sidecar someone else added, the resourceVersion: not tenantd's.
  t.same(ownedFieldChanges(base, deployment({ status: 3, annotation: 'y', sidecar: 'envoy' }), 'tenantd', changedPaths), []);
  t.same(ownedFieldChanges(base, deployment({ replicas: 3 }), 'tenantd', changedPaths), ['spec.replicas']);
  t.same(ownedFieldChanges(base, deployment({ image: 'nginx:2' }), 'tenantd', changedPaths), ['spec.template.spec.containers[0].image']);
  // A field tenantd owned only before (dropped from the spec) or only after (taken over) counts too.
  const lost = deployment({ replicas: 5, managers: [{ manager: 'tenantd', operation: 'Apply', fieldsV1: { 'f:metadata': owned['f:metadata'] } }] });
  t.same(ownedFieldChanges(lost, base, 'tenantd', changedPaths), ['spec.replicas']);
  // Nobody applied it: everything but status and server metadata is compared.
  const plain = deployment({ managers: [] });
  t.same(ownedFieldChanges(plain, deployment({ managers: [], status: 9 }), 'tenantd', changedPaths), []);
  t.same(ownedFieldChanges(plain, deployment({ managers: [], annotation: 'z' }), 'tenantd', changedPaths), ['metadata.annotations']);
});

t.test('inventory identity ignores the version: one object in policy/v1beta1 and policy/v1', async (t) => {
  const beta = { apiVersion: 'policy/v1beta1', kind: 'PodDisruptionBudget', name: 'web', namespace: 'n' };
  const v1 = { ...beta, apiVersion: 'policy/v1' };
  t.equal(identityKey(beta), identityKey(v1));
  t.not(identityKey(v1), identityKey({ ...v1, kind: 'Deployment' }));
  t.equal(identityKey({ apiVersion: 'v1', kind: 'Service', name: 'web', namespace: 'n' }), '/Service/n/web');
  t.same(normalizeRefs([beta, v1]), [v1], 'the later version wins');
  t.same(normalizeRefs([v1, beta]), [beta]);
});

t.test('the fingerprint of an apply moves with tenantd’s fields, the generation and the uid, never with other writers', async (t) => {
  const otherManagers = [{ manager: 'kube-controller-manager', operation: 'Update', subresource: 'status', fieldsV1: { 'f:status': {} } }];
  const fp = (o: LiveObject): string => applyFingerprint(o, 'tenantd');
  const base = fp(deployment());
  t.match(base, /^[0-9a-f]{32}$/);
  t.equal(fp(deployment({ status: 3, annotation: 'y', sidecar: 'envoy' })), base, 'status, another manager’s annotation and container: same');
  t.not(fp(deployment({ replicas: 3 })), base, 'an owned value');
  t.not(fp(deployment({ image: 'nginx:2' })), base);
  const later = deployment({ managers: [{ manager: 'tenantd', operation: 'Apply', fieldsV1: owned, time: '2026-12-04T01:00:00Z' }, ...otherManagers] });
  t.equal(fp(later), base, 'not the entry’s time: before 1.27 every apply moves it');
  const retaken = deployment();
  retaken.metadata.generation = 3;
  t.not(fp(retaken), base, 'the generation: a spec field taken back with force, the same value as last time');
  const moved = deployment();
  moved.metadata.uid = 'other';
  t.not(fp(moved), base, 'a re-created object');
  t.not(applyFingerprint(deployment(), 'someone'), base, 'per manager');
});

t.test('inventory fingerprints: kept only for listed objects, and unreadable ones are simply absent', async (t) => {
  const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'n' };
  const inv = { ...emptyInventory(), Deploy: [ref] };
  const cm = inventoryObject('t1', 'n', inv, { [identityKey(ref)]: 'aa', 'apps/Deployment/n/gone': 'bb' });
  t.same(JSON.parse((cm.data as Record<string, string>).fingerprints ?? ''), { [identityKey(ref)]: 'aa' });
  t.same(parseFingerprints({ ...cm, metadata: { name: cm.metadata.name } }), { [identityKey(ref)]: 'aa' });
  t.notOk('fingerprints' in (inventoryObject('t1', 'n', inv).data as Record<string, string>), 'none recorded: no key');
  t.same(parseFingerprints({ metadata: { name: 'x' }, data: { fingerprints: '{not json' } }), {});
  t.same(parseFingerprints({ metadata: { name: 'x' }, data: { fingerprints: '[1]' } }), {});
  t.same(parseFingerprints({ metadata: { name: 'x' }, data: { fingerprints: '{"a":"1","b":2}' } }), { a: '1' });
});
