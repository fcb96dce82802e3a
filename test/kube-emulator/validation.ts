/**
 * Validation, in two layers as on the real server:
 *  - decode checks (wrong JSON types) fail with 400 BadRequest before anything else;
 *  - field validation fails with 422 Invalid and one cause per field error.
 */
import { badRequest, invalid, type FieldError } from './errors.js';
import { deepEqual, isObject, str, type JsonObject, type JsonValue, type KubeObject } from './json.js';
import type { KindInfo } from './kinds.js';
import { quantityValue } from './quantity.js';
import { labelSelectorMatches } from './selectors.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const MSG = {
  label: "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
  subdomain:
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
  dns1035:
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
  qualifiedName:
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
  labelValue:
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
  configKey:
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
};

function show(value: JsonValue | undefined): string {
  return typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value ?? null);
}

class Errors {
  readonly list: FieldError[] = [];
  required(field: string, detail?: string): void {
    this.list.push({ field, type: 'FieldValueRequired', detail: detail ? `Required value: ${detail}` : 'Required value' });
  }
  invalid(field: string, value: JsonValue | undefined, why: string): void {
    this.list.push({ field, type: 'FieldValueInvalid', detail: `Invalid value: ${show(value)}: ${why}` });
  }
  forbidden(field: string, why: string): void {
    this.list.push({ field, type: 'FieldValueForbidden', detail: `Forbidden: ${why}` });
  }
  notSupported(field: string, value: JsonValue | undefined, supported: string[]): void {
    this.list.push({
      field,
      type: 'FieldValueNotSupported',
      detail: `Unsupported value: ${show(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`,
    });
  }
  tooLong(field: string, max: number): void {
    this.list.push({ field, type: 'FieldValueTooLong', detail: `Too long: may not be more than ${max} bytes` });
  }
}

export function checkDnsName(rule: KindInfo['nameRule'], name: string): string | undefined {
  if (rule === 'path') {
    if (name === '.' || name === '..') return `may not be '${name}'`;
    for (const bad of ['/', '%']) if (name.includes(bad)) return `may not contain '${bad}'`;
    return undefined;
  }
  const max = rule === 'subdomain' ? 253 : 63;
  if (name.length > max) return `must be no more than ${max} characters`;
  const re = rule === 'subdomain' ? DNS1123_SUBDOMAIN : rule === 'label' ? DNS1123_LABEL : DNS1035_LABEL;
  return re.test(name) ? undefined : MSG[rule];
}

function qualifiedNameError(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || checkDnsName('subdomain', prefix))) return `prefix part ${MSG.subdomain}`;
  if (name.length === 0) return 'name part must be non-empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  return QUALIFIED_NAME.test(name) ? undefined : MSG.qualifiedName;
}

// ---------------------------------------------------------------------------------------------
// Decode checks: 400 BadRequest, as the JSON decoder into Go structs would fail.

function decodeError(info: KindInfo, jsType: string, field: string, goType: string): never {
  throw badRequest(
    `${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: json: cannot unmarshal ${jsType} into Go struct field ${field} of type ${goType}`,
  );
}

function jsType(value: JsonValue): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'object' : typeof value;
}

function expectStringMap(info: KindInfo, value: JsonValue | undefined, field: string): void {
  if (value === undefined || value === null) return;
  if (!isObject(value)) decodeError(info, jsType(value), field, 'map[string]string');
  for (const v of Object.values(value)) if (typeof v !== 'string' && v !== null) decodeError(info, jsType(v), field, 'string');
}

function expectInt(info: KindInfo, value: JsonValue | undefined, field: string): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'number' || !Number.isInteger(value)) decodeError(info, jsType(value), field, 'int32');
}

function expectObject(info: KindInfo, value: JsonValue | undefined, field: string, goType: string): void {
  if (value !== undefined && value !== null && !isObject(value)) decodeError(info, jsType(value), field, goType);
}

/** Throws 400 BadRequest when a field has the wrong JSON type. */
export function checkDecodable(info: KindInfo, obj: JsonObject): void {
  expectObject(info, obj.metadata, 'metadata', 'v1.ObjectMeta');
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  for (const f of ['name', 'namespace', 'generateName', 'resourceVersion']) {
    const v = meta[f];
    if (v !== undefined && v !== null && typeof v !== 'string') decodeError(info, jsType(v), `ObjectMeta.metadata.${f}`, 'string');
  }
  expectStringMap(info, meta.labels, 'ObjectMeta.metadata.labels');
  expectStringMap(info, meta.annotations, 'ObjectMeta.metadata.annotations');
  if (meta.finalizers !== undefined && meta.finalizers !== null && !Array.isArray(meta.finalizers)) {
    decodeError(info, jsType(meta.finalizers), 'ObjectMeta.metadata.finalizers', '[]string');
  }
  expectObject(info, obj.spec, `${info.kind}.spec`, `v1.${info.kind}Spec`);
  const spec = isObject(obj.spec) ? obj.spec : {};
  if (info.kind === 'Deployment' || info.kind === 'StatefulSet') {
    expectInt(info, spec.replicas, `${info.kind}Spec.spec.replicas`);
    expectObject(info, spec.selector, `${info.kind}Spec.spec.selector`, 'v1.LabelSelector');
    expectObject(info, spec.template, `${info.kind}Spec.spec.template`, 'v1.PodTemplateSpec');
  }
  if (info.kind === 'ConfigMap') {
    expectStringMap(info, obj.data, 'ConfigMap.data');
    expectStringMap(info, obj.binaryData, 'ConfigMap.binaryData');
  }
  if (info.kind === 'Secret') {
    expectStringMap(info, obj.data, 'Secret.data');
    expectStringMap(info, obj.stringData, 'Secret.stringData');
    if (isObject(obj.data)) {
      for (const v of Object.values(obj.data)) {
        if (typeof v === 'string' && !BASE64.test(v)) {
          throw badRequest(`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte ${Math.max(0, v.length - 1)}`);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Field validation: 422 Invalid.

function validateMetadata(info: KindInfo, obj: KubeObject, e: Errors): void {
  const name = str(obj.metadata.name);
  if (!name) e.required('metadata.name', 'name or generateName is required');
  else {
    const why = checkDnsName(info.nameRule, name);
    if (why) e.invalid('metadata.name', name, why);
  }
  const labels = obj.metadata.labels;
  if (isObject(labels)) {
    for (const [k, v] of Object.entries(labels)) {
      const keyError = qualifiedNameError(k);
      if (keyError) e.invalid('metadata.labels', k, keyError);
      if (typeof v === 'string') {
        if (v.length > 63) e.invalid('metadata.labels', v, 'must be no more than 63 characters');
        else if (!LABEL_VALUE.test(v)) e.invalid('metadata.labels', v, MSG.labelValue);
      }
    }
  }
  const annotations = obj.metadata.annotations;
  if (isObject(annotations)) {
    let total = 0;
    for (const [k, v] of Object.entries(annotations)) {
      const keyError = qualifiedNameError(k);
      if (keyError) e.invalid('metadata.annotations', k, keyError);
      total += k.length + (typeof v === 'string' ? v.length : 0);
    }
    if (total > 256 * 1024) e.tooLong('metadata.annotations', 256 * 1024);
  }
}

function validatePodTemplate(spec: JsonObject, e: Errors): void {
  const template = isObject(spec.template) ? spec.template : undefined;
  const podSpec = isObject(template?.spec) ? template.spec : undefined;
  const containers = Array.isArray(podSpec?.containers) ? podSpec.containers : [];
  if (containers.length === 0) {
    e.required('spec.template.spec.containers');
    return;
  }
  const names = new Set<string>();
  containers.forEach((c, i) => {
    const field = `spec.template.spec.containers[${i}]`;
    if (!isObject(c)) {
      e.invalid(field, c, 'must be an object');
      return;
    }
    const name = str(c.name);
    if (!name) e.required(`${field}.name`);
    else if (!DNS1123_LABEL.test(name) || name.length > 63) e.invalid(`${field}.name`, name, MSG.label);
    else if (names.has(name)) e.list.push({ field: `${field}.name`, type: 'FieldValueDuplicate', detail: `Duplicate value: ${JSON.stringify(name)}` });
    if (name) names.add(name);
    if (!str(c.image)) e.required(`${field}.image`);
  });
}

function validateWorkload(info: KindInfo, obj: KubeObject, old: KubeObject | undefined, e: Errors): void {
  const spec = isObject(obj.spec) ? obj.spec : {};
  const selector = spec.selector;
  const replicas = spec.replicas;
  if (typeof replicas === 'number' && replicas < 0) e.invalid('spec.replicas', replicas, 'must be greater than or equal to 0');
  if (!isObject(selector)) e.required('spec.selector');
  else if (Object.keys(selector).length === 0 || deepEqual(selector, { matchLabels: {} })) {
    e.invalid('spec.selector', selector, `empty selector is invalid for ${info.kind.toLowerCase()}`);
  } else {
    const template = isObject(spec.template) ? spec.template : {};
    const labels = isObject(template.metadata) ? template.metadata.labels : undefined;
    if (!labelSelectorMatches(selector, labels ?? {})) {
      e.invalid('spec.template.metadata.labels', labels ?? {}, '`selector` does not match template `labels`');
    }
  }
  validatePodTemplate(spec, e);
  if (!old) return;
  const oldSpec = isObject(old.spec) ? old.spec : {};
  if (!deepEqual(oldSpec.selector, spec.selector)) e.invalid('spec.selector', spec.selector, 'field is immutable');
  if (info.kind === 'StatefulSet') {
    const mutable = new Set(['replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds']);
    const keys = new Set([...Object.keys(spec), ...Object.keys(oldSpec)]);
    const changed = [...keys].filter((k) => !mutable.has(k) && k !== 'selector' && !deepEqual(spec[k], oldSpec[k]));
    if (changed.length > 0) {
      e.forbidden(
        'spec',
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
      );
    }
  }
}

function storageRequest(spec: JsonObject | undefined): JsonValue | undefined {
  const resources = isObject(spec?.resources) ? spec.resources : undefined;
  const requests = isObject(resources?.requests) ? resources.requests : undefined;
  return requests?.storage;
}

function validatePvc(obj: KubeObject, old: KubeObject | undefined, e: Errors): void {
  const spec = isObject(obj.spec) ? obj.spec : {};
  if (!Array.isArray(spec.accessModes) || spec.accessModes.length === 0) e.required('spec.accessModes', 'at least 1 access mode is required');
  const storage = storageRequest(spec);
  if (storage === undefined) e.required('spec.resources[storage]');
  if (!old) return;
  const oldSpec = isObject(old.spec) ? old.spec : {};
  const strip = (s: JsonObject): JsonObject => {
    const copy: JsonObject = { ...s };
    delete copy.resources;
    if (!oldSpec.volumeName) delete copy.volumeName;
    return copy;
  };
  if (!deepEqual(strip(spec), strip(oldSpec))) {
    e.forbidden('spec', 'spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims');
  }
  const size = (v: JsonValue | undefined): number => (typeof v === 'string' || typeof v === 'number' ? (quantityValue(v) ?? 0) : 0);
  if (size(storage) < size(storageRequest(oldSpec))) e.forbidden('spec.resources.requests.storage', 'field can not be less than previous value');
}

function validateService(obj: KubeObject, old: KubeObject | undefined, e: Errors): void {
  const spec = isObject(obj.spec) ? obj.spec : {};
  const types = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
  const type = spec.type ?? 'ClusterIP';
  if (typeof type !== 'string' || !types.includes(type)) e.notSupported('spec.type', type, types);
  const ports = Array.isArray(spec.ports) ? spec.ports : [];
  if (ports.length === 0 && type !== 'ExternalName' && spec.clusterIP !== 'None') e.required('spec.ports');
  ports.forEach((p, i) => {
    if (!isObject(p)) return;
    if (typeof p.port !== 'number' || p.port < 1 || p.port > 65535) e.invalid(`spec.ports[${i}].port`, p.port, 'must be between 1 and 65535, inclusive');
    if (ports.length > 1 && !str(p.name)) e.required(`spec.ports[${i}].name`);
  });
  const oldSpec = isObject(old?.spec) ? old.spec : undefined;
  if (oldSpec?.clusterIP !== undefined && spec.clusterIP !== oldSpec.clusterIP && type !== 'ExternalName') {
    e.invalid('spec.clusterIPs[0]', spec.clusterIP, 'may not change once set');
  }
}

function validateDataKeys(obj: KubeObject, e: Errors): void {
  for (const field of ['data', 'binaryData']) {
    const data = obj[field];
    if (!isObject(data)) continue;
    for (const k of Object.keys(data)) if (!CONFIG_KEY.test(k)) e.invalid(`${field}[${k}]`, k, MSG.configKey);
  }
}

function validateImmutableData(obj: KubeObject, old: KubeObject | undefined, e: Errors): void {
  if (old?.immutable !== true) return;
  if (!deepEqual(obj.data, old.data)) e.forbidden('data', 'field is immutable when `immutable` is set');
  if (obj.immutable !== true) e.forbidden('immutable', 'field is immutable when `immutable` is set');
}

function validateIngress(obj: KubeObject, e: Errors): void {
  const spec = isObject(obj.spec) ? obj.spec : {};
  const rules = Array.isArray(spec.rules) ? spec.rules : [];
  rules.forEach((rule, i) => {
    if (!isObject(rule) || !isObject(rule.http)) return;
    const paths = Array.isArray(rule.http.paths) ? rule.http.paths : [];
    paths.forEach((p, j) => {
      const field = `spec.rules[${i}].http.paths[${j}]`;
      if (!isObject(p)) return;
      const pathTypes = ['Exact', 'Prefix', 'ImplementationSpecific'];
      if (p.pathType === undefined) e.required(`${field}.pathType`, 'pathType must be specified');
      else if (typeof p.pathType !== 'string' || !pathTypes.includes(p.pathType)) e.notSupported(`${field}.pathType`, p.pathType, pathTypes);
      if (p.pathType !== 'ImplementationSpecific' && typeof p.path === 'string' && !p.path.startsWith('/')) {
        e.invalid(`${field}.path`, p.path, 'must be an absolute path');
      }
      if (!isObject(p.backend)) e.required(`${field}.backend`);
    });
  });
}

function validateNetworkPolicy(obj: KubeObject, e: Errors): void {
  const spec = isObject(obj.spec) ? obj.spec : {};
  const types = Array.isArray(spec.policyTypes) ? spec.policyTypes : [];
  types.forEach((t, i) => {
    if (t !== 'Ingress' && t !== 'Egress') e.notSupported(`spec.policyTypes[${i}]`, t, ['Ingress', 'Egress']);
  });
}

function validateRoleBinding(obj: KubeObject, old: KubeObject | undefined, e: Errors): void {
  if (!isObject(obj.roleRef) || !str(obj.roleRef.name)) e.required('roleRef.name');
  if (old && !deepEqual(obj.roleRef, old.roleRef)) e.invalid('roleRef', obj.roleRef, 'cannot change roleRef');
}

function validateFinalizersOnDelete(obj: KubeObject, old: KubeObject | undefined, e: Errors): void {
  if (!old?.metadata.deletionTimestamp) return;
  const before = new Set(Array.isArray(old.metadata.finalizers) ? old.metadata.finalizers : []);
  const after = Array.isArray(obj.metadata.finalizers) ? obj.metadata.finalizers : [];
  if (after.some((f) => !before.has(f))) e.forbidden('metadata.finalizers', 'no new finalizers can be added if the object is being deleted');
}

/** Throws 422 Invalid listing every field error of `obj` (`old` is the stored object on updates). */
export function validate(info: KindInfo, obj: KubeObject, old: KubeObject | undefined): void {
  const e = new Errors();
  validateMetadata(info, obj, e);
  validateFinalizersOnDelete(obj, old, e);
  switch (info.kind) {
    case 'Deployment':
    case 'StatefulSet':
      validateWorkload(info, obj, old, e);
      break;
    case 'PersistentVolumeClaim':
      validatePvc(obj, old, e);
      break;
    case 'Service':
      validateService(obj, old, e);
      break;
    case 'ConfigMap':
      validateDataKeys(obj, e);
      validateImmutableData(obj, old, e);
      break;
    case 'Secret':
      validateDataKeys(obj, e);
      validateImmutableData(obj, old, e);
      if (old && old.type !== obj.type) e.invalid('type', obj.type, 'field is immutable');
      break;
    case 'Ingress':
      validateIngress(obj, e);
      break;
    case 'NetworkPolicy':
      validateNetworkPolicy(obj, e);
      break;
    case 'RoleBinding':
      validateRoleBinding(obj, old, e);
      break;
  }
  if (e.list.length > 0) throw invalid(info, str(obj.metadata.name) ?? '', e.list);
}
