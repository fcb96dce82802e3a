/**
 * The Pulumi program of one tenant: every object `renderTenant` produced, declared with
 * @pulumi/kubernetes. The program is built from the same renderer as the `render` and `kubernetes`
 * providers, so the three never disagree about what a tenant is: names, namespaces, labels,
 * annotations and specs are passed through unchanged.
 *
 * How the objects are declared (`planDeclarations` is the pure part; `declareTenant` creates them):
 *
 * - One typed resource per object where @pulumi/kubernetes has a class for its apiVersion/kind
 *   (core.v1.Namespace, apps.v1.StatefulSet, networking.v1.Ingress, …); anything else falls back to
 *   `apiextensions.CustomResource`, which takes any apiVersion/kind. Logical names are
 *   `<namespace>/<name>` (or `<name>` when cluster-scoped), unique per type like the objects.
 * - Order: every object depends on the Namespace; every object of a later group (Deploy,
 *   Configure) depends on every object of the earlier groups, so one `pulumi up` applies the groups
 *   in the phase order the other providers use (and `destroy` tears them down in reverse); inside a
 *   group an object depends on the earlier non-workload objects (quota, limits, secrets, claims,
 *   services), so workloads come after what they consume.
 * - An explicit `kubernetes.Provider` is always declared (kubeconfig / context when configured,
 *   the ambient kubeconfig otherwise) so its settings are fixed from the first update: server-side
 *   apply, ConfigMaps and Secrets mutable in place (the endpoints ConfigMap changes with the
 *   services; replacing it would delete and re-create it), a stable `clusterIdentifier` (a rotated
 *   kubeconfig must not plan a replacement of every resource), and `upsertExistingObjects` (see
 *   claims below; it also adopts objects another tenantd provider created for the same tenant).
 * - PersistentVolumeClaims are `retainOnDelete`: the Kubernetes provider treats a changed storage
 *   request as a replacement (delete, then create). Retained, the "delete" leaves the claim and its
 *   data alone and the "create" is a server-side apply onto the existing claim, i.e. an in-place
 *   expansion, which is what the renderer intends. On deprovision the claims go with the namespace.
 *   Caveat of upserting: should the renderer ever change an object's apiVersion, declare an alias,
 *   or the old resource's delete would remove the object the new one just adopted.
 * - The database StatefulSet carries the renderer's replace strategy (`orphan`) as
 *   `pulumi.com/deletionPropagationPolicy: orphan`, so a replacement (immutable
 *   volumeClaimTemplates) keeps the pods running while the StatefulSet is re-created.
 * - Generated secrets: the rendered Secret is an empty shell; the program fills `stringData` with
 *   the fixed keys and the generated ones, all wrapped in `pulumi.secret`. Generated values come
 *   from stack configuration (`tenantd:generated.<secret>.<key>`, set once as an encrypted secret
 *   config value by the engine, see engine.ts) unless `secretValue` is given (tests).
 * - Stack outputs are `outputsFor(rendered)` (namespace and endpoints, never secrets) plus
 *   `tenantd.digest`, the digest of the rendered objects, so a reader can tell which rendering the
 *   stack's last update applied.
 */
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { stalled } from '../../core/errors.js';
import { ANNOTATION_REPLACE_STRATEGY, APPLY_GROUPS, outputsFor } from '../resources/renderer.js';
import type { ApplyGroup, GeneratedSecret, KubeObject, RenderedTenant } from '../resources/types.js';
import { CONFIG_NAMESPACE, DIGEST_OUTPUT, generatedSecretConfigName, typeTokenFor } from './names.js';

export { CONFIG_NAMESPACE, DIGEST_OUTPUT, generatedSecretConfigKey, generatedSecretConfigName, publicOutputs, typeTokenFor } from './names.js';

/** Logical name of the explicit Kubernetes provider resource. */
export const KUBERNETES_PROVIDER_NAME = 'kubernetes';
/** Annotation the Kubernetes provider reads to choose how a delete propagates. */
export const ANNOTATION_DELETION_PROPAGATION = 'pulumi.com/deletionPropagationPolicy';

export interface TenantProgramOptions {
  /** Path to (or content of) a kubeconfig; the ambient one (KUBECONFIG, ~/.kube/config) when absent. */
  kubeconfig?: string;
  /** kubeconfig context to use. */
  kubeContext?: string;
  /**
   * Names the cluster for Pulumi: the provider is replaced (and with it every resource) only when
   * this changes. Default: the context name, or `default`.
   */
  clusterIdentifier?: string;
  /**
   * Render manifests to this directory instead of applying them (the Kubernetes provider's
   * `renderYamlToDirectory`; secret values are written in plaintext). For tests without a cluster.
   */
  renderYamlToDirectory?: string;
  /** A generated secret's value; default: the stack's secret config value. */
  secretValue?: (secretName: string, key: string) => pulumi.Input<string>;
}

/** What kind of resource an object becomes. */
export interface Declaration {
  /** Pulumi logical name: `<namespace>/<name>`, or `<name>` when cluster-scoped. */
  logicalName: string;
  /** Pulumi type token, e.g. `kubernetes:apps/v1:Deployment`. */
  type: string;
  group: ApplyGroup;
  object: KubeObject;
  /** Declarations (by `key`) this one depends on. */
  dependsOn: string[];
  /** `type::logicalName`: unique in a stack. */
  key: string;
  retainOnDelete: boolean;
  /** The generated secret this object carries the values of, if any. */
  generatedSecret: GeneratedSecret | null;
}

type KubeResourceCtor = new (name: string, args: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource;

/** @pulumi/kubernetes classes for the kinds the renderer produces, keyed `apiVersion/kind`. */
const TYPED: Readonly<Record<string, KubeResourceCtor>> = {
  'v1/Namespace': k8s.core.v1.Namespace as unknown as KubeResourceCtor,
  'v1/ResourceQuota': k8s.core.v1.ResourceQuota as unknown as KubeResourceCtor,
  'v1/LimitRange': k8s.core.v1.LimitRange as unknown as KubeResourceCtor,
  'v1/ServiceAccount': k8s.core.v1.ServiceAccount as unknown as KubeResourceCtor,
  'v1/Secret': k8s.core.v1.Secret as unknown as KubeResourceCtor,
  'v1/ConfigMap': k8s.core.v1.ConfigMap as unknown as KubeResourceCtor,
  'v1/Service': k8s.core.v1.Service as unknown as KubeResourceCtor,
  'v1/PersistentVolumeClaim': k8s.core.v1.PersistentVolumeClaim as unknown as KubeResourceCtor,
  'apps/v1/Deployment': k8s.apps.v1.Deployment as unknown as KubeResourceCtor,
  'apps/v1/StatefulSet': k8s.apps.v1.StatefulSet as unknown as KubeResourceCtor,
  'networking.k8s.io/v1/NetworkPolicy': k8s.networking.v1.NetworkPolicy as unknown as KubeResourceCtor,
  'networking.k8s.io/v1/Ingress': k8s.networking.v1.Ingress as unknown as KubeResourceCtor,
  'policy/v1/PodDisruptionBudget': k8s.policy.v1.PodDisruptionBudget as unknown as KubeResourceCtor,
};

/** Kinds that run pods: they come after the objects of their group they consume. */
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'ReplicaSet', 'Pod']);

/** Whether a typed @pulumi/kubernetes class declares this object (else a CustomResource does). */
export const isTypedKind = (obj: Pick<KubeObject, 'apiVersion' | 'kind'>): boolean => `${obj.apiVersion}/${obj.kind}` in TYPED;

export const logicalNameFor = (obj: KubeObject): string =>
  obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;

/**
 * The declarations of a rendered tenant, in apply order, with their dependencies: the pure part of
 * the program, tested without Pulumi.
 */
export function planDeclarations(rendered: RenderedTenant): Declaration[] {
  const all = APPLY_GROUPS.flatMap((group) => rendered.groups[group].map((object) => ({ group, object })));
  const nsIndex = all.findIndex(({ object }) => object.apiVersion === 'v1' && object.kind === 'Namespace' && object.metadata.name === rendered.namespace);
  if (nsIndex < 0) {
    throw stalled('E_PULUMI_PROGRAM', `rendered tenant ${rendered.tenantId} has no Namespace ${rendered.namespace}`, { tenantId: rendered.tenantId });
  }
  // The namespace first: everything else depends on it.
  const ordered = [all[nsIndex]!, ...all.filter((_, i) => i !== nsIndex)];
  const nsKey = `${typeTokenFor('v1', 'Namespace')}::${rendered.namespace}`;
  const secrets = new Map(rendered.generatedSecrets.map((gs) => [`${gs.namespace}/${gs.name}`, gs]));
  const out: Declaration[] = [];
  const byKey = new Set<string>();
  for (const { group, object } of ordered) {
    const type = typeTokenFor(object.apiVersion, object.kind);
    const logicalName = logicalNameFor(object);
    const key = `${type}::${logicalName}`;
    if (byKey.has(key)) {
      throw stalled('E_PULUMI_PROGRAM', `two rendered objects declare ${key}`, { tenantId: rendered.tenantId, resource: key });
    }
    byKey.add(key);
    const deps: string[] = [];
    if (key !== nsKey) {
      const groupIndex = APPLY_GROUPS.indexOf(group);
      for (const d of out) {
        const dIndex = APPLY_GROUPS.indexOf(d.group);
        const earlierGroup = dIndex < groupIndex;
        const consumedInGroup = dIndex === groupIndex && WORKLOAD_KINDS.has(object.kind) && !WORKLOAD_KINDS.has(d.object.kind);
        if (d.key === nsKey || earlierGroup || consumedInGroup) deps.push(d.key);
      }
    }
    const generatedSecret =
      object.apiVersion === 'v1' && object.kind === 'Secret' ? (secrets.get(`${object.metadata.namespace ?? ''}/${object.metadata.name}`) ?? null) : null;
    out.push({
      logicalName,
      type,
      group,
      object,
      key,
      dependsOn: deps,
      retainOnDelete: object.apiVersion === 'v1' && object.kind === 'PersistentVolumeClaim',
      generatedSecret,
    });
  }
  return out;
}

/** The resource arguments of a declaration: the rendered object, plus secret data and Pulumi annotations. */
function argsFor(decl: Declaration, opts: TenantProgramOptions): Record<string, unknown> {
  const obj = decl.object;
  const args: Record<string, unknown> = { ...obj };
  if (obj.metadata.annotations?.[ANNOTATION_REPLACE_STRATEGY] === 'orphan' && obj.kind === 'StatefulSet') {
    args.metadata = { ...obj.metadata, annotations: { ...obj.metadata.annotations, [ANNOTATION_DELETION_PROPAGATION]: 'orphan' } };
  }
  const gs = decl.generatedSecret;
  if (gs) {
    const config = new pulumi.Config(CONFIG_NAMESPACE);
    const valueOf = opts.secretValue ?? ((secretName: string, key: string) => config.requireSecret(generatedSecretConfigName(secretName, key)));
    const data: Record<string, pulumi.Input<string>> = { ...gs.fixed };
    for (const key of gs.generatedKeys) data[key] = valueOf(gs.name, key);
    args.stringData = pulumi.secret(data);
  }
  return args;
}

export interface DeclaredTenant {
  provider: k8s.Provider;
  /** Resources by declaration key (`type::logicalName`), in apply order. */
  resources: Map<string, pulumi.CustomResource>;
  declarations: Declaration[];
  /** The stack outputs the program returns. */
  outputs: Record<string, string>;
}

/** Declares the tenant's resources in the current Pulumi program (or mock runtime). */
export function declareTenant(rendered: RenderedTenant, opts: TenantProgramOptions = {}): DeclaredTenant {
  const providerArgs: k8s.ProviderArgs = {
    enableServerSideApply: true,
    enableConfigMapMutable: true,
    enableSecretMutable: true,
    upsertExistingObjects: true,
    clusterIdentifier: opts.clusterIdentifier ?? opts.kubeContext ?? 'default',
  };
  if (opts.kubeconfig !== undefined) providerArgs.kubeconfig = opts.kubeconfig;
  if (opts.kubeContext !== undefined) providerArgs.context = opts.kubeContext;
  if (opts.renderYamlToDirectory !== undefined) {
    // The Kubernetes provider rejects a context or kubeconfig together with render mode.
    delete providerArgs.context;
    delete providerArgs.kubeconfig;
    providerArgs.renderYamlToDirectory = opts.renderYamlToDirectory;
  }
  const provider = new k8s.Provider(KUBERNETES_PROVIDER_NAME, providerArgs);
  const declarations = planDeclarations(rendered);
  const resources = new Map<string, pulumi.CustomResource>();
  for (const decl of declarations) {
    const resourceOpts: pulumi.CustomResourceOptions = {
      provider,
      dependsOn: decl.dependsOn.map((k) => resources.get(k)!),
    };
    if (decl.retainOnDelete) resourceOpts.retainOnDelete = true;
    const args = argsFor(decl, opts);
    const ctor = TYPED[`${decl.object.apiVersion}/${decl.object.kind}`];
    const resource = ctor
      ? new ctor(decl.logicalName, args, resourceOpts)
      : new k8s.apiextensions.CustomResource(decl.logicalName, args as k8s.apiextensions.CustomResourceArgs, resourceOpts);
    resources.set(decl.key, resource);
  }
  return { provider, resources, declarations, outputs: { ...outputsFor(rendered), [DIGEST_OUTPUT]: rendered.digest } };
}

/** The inline program (Automation API `PulumiFn`) of one tenant; its result becomes the stack outputs. */
export function tenantProgram(rendered: RenderedTenant, opts: TenantProgramOptions = {}): () => Promise<Record<string, string>> {
  return async () => declareTenant(rendered, opts).outputs;
}
