/**
 * What the API server does to an object before storing it: normalization (canonical quantities,
 * Secret stringData folded into data) and defaulting (Deployment strategy, Service clusterIP, …).
 * Normalization also runs on apply configurations, so ownership and conflicts compare stored forms.
 */
import { badRequest } from './errors.js';
import { child, isObject, type JsonObject, type JsonValue, type KubeObject } from './json.js';
import type { KindInfo } from './kinds.js';
import { canonicalQuantity, QUANTITY_PATTERN } from './quantity.js';

function canonicalizeQuantities(info: KindInfo, map: JsonValue | undefined): void {
  if (!isObject(map)) return;
  for (const [key, value] of Object.entries(map)) {
    if (typeof value !== 'string' && typeof value !== 'number') continue;
    const canonical = canonicalQuantity(value);
    if (canonical === undefined) {
      throw badRequest(
        `${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: quantities must match the regular expression '${QUANTITY_PATTERN}'`,
      );
    }
    map[key] = canonical;
  }
}

function resourceRequirements(info: KindInfo, resources: JsonValue | undefined): void {
  if (!isObject(resources)) return;
  canonicalizeQuantities(info, resources.requests);
  canonicalizeQuantities(info, resources.limits);
}

function listOfObjects(value: JsonValue | undefined): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function podTemplateSpec(obj: JsonObject): JsonObject | undefined {
  const spec = obj.spec;
  if (!isObject(spec) || !isObject(spec.template)) return undefined;
  return isObject(spec.template.spec) ? spec.template.spec : undefined;
}

/** Rewrites values into the form the server stores; runs on objects and on apply configurations. */
export function normalize(info: KindInfo, obj: KubeObject): void {
  const spec = isObject(obj.spec) ? obj.spec : undefined;
  const pod = podTemplateSpec(obj);
  if (pod) {
    for (const c of [...listOfObjects(pod.containers), ...listOfObjects(pod.initContainers)]) resourceRequirements(info, c.resources);
  }
  switch (info.kind) {
    case 'StatefulSet':
      for (const t of listOfObjects(spec?.volumeClaimTemplates)) if (isObject(t.spec)) resourceRequirements(info, t.spec.resources);
      break;
    case 'PersistentVolumeClaim':
      resourceRequirements(info, spec?.resources);
      if (isObject(obj.status)) canonicalizeQuantities(info, obj.status.capacity);
      break;
    case 'ResourceQuota':
      canonicalizeQuantities(info, spec?.hard);
      if (isObject(obj.status)) {
        canonicalizeQuantities(info, obj.status.hard);
        canonicalizeQuantities(info, obj.status.used);
      }
      break;
    case 'LimitRange':
      for (const l of listOfObjects(spec?.limits)) {
        for (const k of ['max', 'min', 'default', 'defaultRequest', 'maxLimitRequestRatio']) canonicalizeQuantities(info, l[k]);
      }
      break;
    case 'Secret':
      if (isObject(obj.stringData)) {
        const data = child(obj, 'data');
        for (const [k, v] of Object.entries(obj.stringData)) {
          if (typeof v === 'string') data[k] = Buffer.from(v, 'utf8').toString('base64');
        }
        delete obj.stringData;
      }
      break;
  }
}

function setDefault(obj: JsonObject, key: string, value: JsonValue): void {
  if (obj[key] === undefined || obj[key] === null) obj[key] = value;
}

function defaultPodTemplate(obj: JsonObject): void {
  const pod = podTemplateSpec(obj);
  if (!pod) return;
  setDefault(pod, 'restartPolicy', 'Always');
  setDefault(pod, 'terminationGracePeriodSeconds', 30);
  setDefault(pod, 'dnsPolicy', 'ClusterFirst');
  setDefault(pod, 'securityContext', {});
  setDefault(pod, 'schedulerName', 'default-scheduler');
  for (const c of [...listOfObjects(pod.containers), ...listOfObjects(pod.initContainers)]) {
    const image = typeof c.image === 'string' ? c.image : '';
    const tagged = /:[^/]+$/.test(image.split('@')[0] ?? '') && !image.endsWith(':latest');
    setDefault(c, 'imagePullPolicy', tagged || image.includes('@') ? 'IfNotPresent' : 'Always');
    setDefault(c, 'terminationMessagePath', '/dev/termination-log');
    setDefault(c, 'terminationMessagePolicy', 'File');
    setDefault(c, 'resources', {});
    for (const p of listOfObjects(c.ports)) setDefault(p, 'protocol', 'TCP');
  }
}

export interface DefaultingContext {
  /** The stored object for updates; undefined on create. */
  old: KubeObject | undefined;
  allocateClusterIP(): string;
}

/** Fills in the defaults a real API server adds. Server-added fields are owned by no manager. */
export function applyDefaults(info: KindInfo, obj: KubeObject, ctx: DefaultingContext): void {
  const spec = isObject(obj.spec) ? obj.spec : undefined;
  switch (info.kind) {
    case 'Namespace': {
      const name = typeof obj.metadata.name === 'string' ? obj.metadata.name : '';
      child(obj.metadata, 'labels')['kubernetes.io/metadata.name'] = name;
      break;
    }
    case 'Secret':
      setDefault(obj, 'type', 'Opaque');
      break;
    case 'Service': {
      const s = child(obj, 'spec');
      setDefault(s, 'type', 'ClusterIP');
      setDefault(s, 'sessionAffinity', 'None');
      const oldSpec = isObject(ctx.old?.spec) ? ctx.old.spec : undefined;
      if (s.type !== 'ExternalName') {
        if (s.clusterIP === undefined && oldSpec?.clusterIP !== undefined) s.clusterIP = oldSpec.clusterIP;
        setDefault(s, 'clusterIP', ctx.allocateClusterIP());
        s.clusterIPs = [s.clusterIP ?? null];
        setDefault(s, 'ipFamilies', ['IPv4']);
        setDefault(s, 'ipFamilyPolicy', 'SingleStack');
        setDefault(s, 'internalTrafficPolicy', 'Cluster');
      }
      for (const p of listOfObjects(s.ports)) {
        setDefault(p, 'protocol', 'TCP');
        setDefault(p, 'targetPort', p.port ?? null);
      }
      break;
    }
    case 'PersistentVolumeClaim': {
      const s = child(obj, 'spec');
      setDefault(s, 'volumeMode', 'Filesystem');
      // A cluster with a default StorageClass ("standard", as on kind) fills this in.
      setDefault(s, 'storageClassName', 'standard');
      break;
    }
    case 'Deployment': {
      const s = child(obj, 'spec');
      setDefault(s, 'replicas', 1);
      setDefault(s, 'revisionHistoryLimit', 10);
      setDefault(s, 'progressDeadlineSeconds', 600);
      const strategy = child(s, 'strategy');
      setDefault(strategy, 'type', 'RollingUpdate');
      if (strategy.type === 'RollingUpdate') {
        const ru = child(strategy, 'rollingUpdate');
        setDefault(ru, 'maxSurge', '25%');
        setDefault(ru, 'maxUnavailable', '25%');
      }
      defaultPodTemplate(obj);
      break;
    }
    case 'StatefulSet': {
      const s = child(obj, 'spec');
      setDefault(s, 'replicas', 1);
      setDefault(s, 'revisionHistoryLimit', 10);
      setDefault(s, 'podManagementPolicy', 'OrderedReady');
      const strategy = child(s, 'updateStrategy');
      setDefault(strategy, 'type', 'RollingUpdate');
      if (strategy.type === 'RollingUpdate') setDefault(child(strategy, 'rollingUpdate'), 'partition', 0);
      const retention = child(s, 'persistentVolumeClaimRetentionPolicy');
      setDefault(retention, 'whenDeleted', 'Retain');
      setDefault(retention, 'whenScaled', 'Retain');
      for (const t of listOfObjects(s.volumeClaimTemplates)) {
        setDefault(t, 'apiVersion', 'v1');
        setDefault(t, 'kind', 'PersistentVolumeClaim');
        setDefault(child(t, 'spec'), 'volumeMode', 'Filesystem');
      }
      defaultPodTemplate(obj);
      break;
    }
    case 'NetworkPolicy':
      if (spec && !Array.isArray(spec.policyTypes)) {
        spec.policyTypes = spec.egress !== undefined ? ['Ingress', 'Egress'] : ['Ingress'];
      }
      break;
  }
}

/** The status an object starts with when created (the main resource never writes status). */
export function initialStatus(info: KindInfo): JsonObject | undefined {
  switch (info.kind) {
    case 'Namespace':
      return { phase: 'Active' };
    case 'PersistentVolumeClaim':
      return { phase: 'Pending' };
    case 'Service':
    case 'Ingress':
      return { loadBalancer: {} };
    case 'Deployment':
    case 'StatefulSet':
    case 'ResourceQuota':
    case 'PodDisruptionBudget':
      return {};
    default:
      return undefined;
  }
}

/** The spec a new object starts with when its main resource cannot write spec (Namespace). */
export function initialServerSpec(info: KindInfo): JsonObject | undefined {
  return info.kind === 'Namespace' ? { finalizers: ['kubernetes'] } : undefined;
}
