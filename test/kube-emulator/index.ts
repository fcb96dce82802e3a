/**
 * A Kubernetes API server emulator for tests: the real REST protocol over HTTP on 127.0.0.1, so
 * @kubernetes/client-node talks to it through an ordinary kubeconfig.
 *
 *   const emu = await startKubeEmulator({ autoReady: true });
 *   t.teardown(() => emu.close());
 *   const objects = KubernetesObjectApi.makeApiClient(emu.kubeConfig());
 *   await objects.patch(deployment, undefined, undefined, 'tenantd', true, PatchStrategy.ServerSideApply);
 *   emu.edit({ kind: 'Deployment', namespace: 't1', name: 'web' }, (d) => { (d.spec as { replicas: number }).replicas = 5; });
 *   emu.injectError({ method: 'PATCH', path: /\/deployments\/web$/ }, 500, 1);
 *
 * Modules: server (HTTP, routing, watch), registry (write semantics), managed-fields (SSA),
 * store (objects, resourceVersion, events), kinds (registry of kinds, discovery), validation,
 * defaults (defaulting, normalization), quantity, patch, selectors, controllers, traffic (log, faults).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { Controllers, SYSTEM_NAMESPACES } from './controllers.js';
import { clone, str, toJson, type KubeObject } from './json.js';
import { findByKind, findLoosely, type KindInfo } from './kinds.js';
import { NAMESPACE_KIND, Registry } from './registry.js';
import { KubeHttpServer, type ServerState } from './server.js';
import { ObjectStore } from './store.js';
import { createFault, type FaultOptions, type InjectedFault, type RecordedRequest, type RequestMatcher } from './traffic.js';

export type { JsonObject, JsonValue, KubeObject } from './json.js';
export type { FaultOptions, InjectedFault, RecordedRequest, RequestMatcher } from './traffic.js';
export { KINDS, type KindInfo } from './kinds.js';
export { KubeStatusError } from './errors.js';
export { canonicalQuantity } from './quantity.js';

export const DEFAULT_TOKEN = 'kube-emulator-token';

export interface KubeEmulatorOptions {
  /** Bearer token every request must carry (default DEFAULT_TOKEN); null turns authentication off. */
  token?: string | null;
  /** Workloads become ready and PVCs bound by themselves shortly after each write (default false). */
  autoReady?: boolean;
  /** Delay before the emulated controllers react to a write (default 10 ms). */
  controllerDelayMs?: number;
  /** 'auto' (default): terminating namespaces advance by themselves; 'manual': only stepNamespaces() advances them. */
  namespaceFinalization?: 'auto' | 'manual';
  /** Interval between automatic namespace deletion steps (default 20 ms). */
  namespaceStepMs?: number;
  /**
   * What every real cluster has (default true): the namespaces default, kube-system, kube-public and
   * kube-node-lease, and in every namespace the `default` ServiceAccount and the `kube-root-ca.crt`
   * ConfigMap (created `controllerDelayMs` after the namespace, recreated when deleted).
   */
  systemObjects?: boolean;
}

/** Names an object for the test controls; `kind` alone (Deployment, deployments, deploy) is enough. */
export interface ObjectRef {
  apiVersion?: string;
  kind: string;
  namespace?: string;
  name: string;
}

export interface KubeEmulator {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly token: string | undefined;
  /** A KubeConfig whose current context points at the emulator (optionally with a default namespace). */
  kubeConfig(options?: { namespace?: string }): KubeConfig;
  /** Stops the server, open watches and the controllers' timers. */
  close(): Promise<void>;

  /** Every request received, in order (discovery included). */
  readonly requests: readonly RecordedRequest[];
  clearRequests(): void;
  /** The store's current resourceVersion. */
  resourceVersion(): string;

  /** A copy of a stored object, or undefined. */
  get(ref: ObjectRef): KubeObject | undefined;
  /** Copies of stored objects, of one kind or all, in one namespace or all. */
  list(kind?: string, namespace?: string): KubeObject[];
  /** Creates an object directly (validated, defaulted, owned by `manager`, default "emulator-seed"). */
  seed(obj: object, options?: { manager?: string }): KubeObject;
  /**
   * Changes an object behind the client's back, as another field manager (default "kubectl-edit",
   * operation Update), exactly as a PUT would: validated, resourceVersion bumped, fields it changed
   * taken from their owners. `mutate` edits the draft in place or returns a replacement.
   */
  edit(ref: ObjectRef, mutate: (obj: KubeObject) => KubeObject | void, options?: { manager?: string; subresource?: 'status' }): KubeObject;

  /** Whether workloads become ready and PVCs bind by themselves; can be flipped at any time. */
  autoReady: boolean;
  /** Sets a Deployment's or StatefulSet's ready replicas now (and clears a failed rollout). */
  setReady(namespace: string, kind: string, name: string, readyReplicas: number): KubeObject;
  /** Every workload fully ready, every claim bound. */
  markAllReady(): void;
  /** Binds a PersistentVolumeClaim (spec.volumeName, status.phase Bound, capacity). */
  bindPvc(namespace: string, name: string): KubeObject;
  /** Progressing=False with `reason` (default ProgressDeadlineExceeded) until setReady/markAllReady. */
  failRollout(namespace: string, name: string, reason?: string, kind?: string): KubeObject;
  /** Advances terminating namespaces one step (see namespaceFinalization); returns how many remain. */
  stepNamespaces(): number;

  /** 'drop' (default) resets every connection; '503' answers ServiceUnavailable. */
  setUnreachable(unreachable: boolean, mode?: 'drop' | '503'): void;
  /** Answers the next `times` (default 1) matching requests with a Status of `status`. */
  injectError(match: RequestMatcher, status: number, times?: number, options?: FaultOptions): InjectedFault;
}

class Emulator implements KubeEmulator {
  readonly store = new ObjectStore();
  readonly controllers: Controllers;
  readonly registry: Registry;
  readonly state: ServerState;
  readonly http: KubeHttpServer;
  url = '';

  constructor(options: KubeEmulatorOptions) {
    this.controllers = new Controllers(this.store, {
      autoReady: options.autoReady ?? false,
      controllerDelayMs: options.controllerDelayMs ?? 10,
      namespaceFinalization: options.namespaceFinalization ?? 'auto',
      namespaceStepMs: options.namespaceStepMs ?? 20,
      systemObjects: options.systemObjects ?? true,
    });
    this.registry = new Registry(this.store, this.controllers);
    this.controllers.attach(this.registry);
    this.state = {
      token: options.token === null ? undefined : (options.token ?? DEFAULT_TOKEN),
      unreachable: false,
      faults: [],
      requests: [],
    };
    this.http = new KubeHttpServer(this.store, this.registry, this.state);
    if (this.controllers.options.systemObjects) {
      for (const name of SYSTEM_NAMESPACES) {
        this.registry.create(NAMESPACE_KIND, undefined, { metadata: { name } }, { manager: 'kube-apiserver', dryRun: false });
        this.controllers.populateNamespace(name);
      }
    }
  }

  get token(): string | undefined {
    return this.state.token;
  }

  get requests(): readonly RecordedRequest[] {
    return this.state.requests;
  }

  get autoReady(): boolean {
    return this.controllers.options.autoReady;
  }

  set autoReady(value: boolean) {
    this.controllers.options.autoReady = value;
  }

  kubeConfig(options: { namespace?: string } = {}): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'kube-emulator', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'kube-emulator-user', ...(this.state.token !== undefined ? { token: this.state.token } : {}) }],
      contexts: [
        {
          name: 'kube-emulator',
          cluster: 'kube-emulator',
          user: 'kube-emulator-user',
          ...(options.namespace ? { namespace: options.namespace } : {}),
        },
      ],
      currentContext: 'kube-emulator',
    });
    return kc;
  }

  async close(): Promise<void> {
    this.controllers.close();
    await this.http.close();
  }

  clearRequests(): void {
    this.state.requests.length = 0;
  }

  resourceVersion(): string {
    return this.store.currentResourceVersion;
  }

  get(ref: ObjectRef): KubeObject | undefined {
    const info = this.kindOf(ref.kind, ref.apiVersion);
    return this.store.get(info, info.namespaced ? ref.namespace : undefined, ref.name);
  }

  list(kind?: string, namespace?: string): KubeObject[] {
    if (kind) return this.store.list(this.kindOf(kind), namespace);
    return this.store
      .all()
      .map(({ object }) => object)
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace);
  }

  seed(obj: object, options: { manager?: string } = {}): KubeObject {
    const body = toJson(obj);
    const record = typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {};
    const info = this.kindOf(str(record.kind) ?? '', str(record.apiVersion));
    const meta = typeof record.metadata === 'object' && record.metadata !== null && !Array.isArray(record.metadata) ? record.metadata : {};
    const namespace = info.namespaced ? (str(meta.namespace) ?? 'default') : undefined;
    return this.registry.create(info, namespace, body, { manager: options.manager ?? 'emulator-seed', dryRun: false });
  }

  edit(ref: ObjectRef, mutate: (obj: KubeObject) => KubeObject | void, options: { manager?: string; subresource?: 'status' } = {}): KubeObject {
    const info = this.kindOf(ref.kind, ref.apiVersion);
    return this.registry.update(info, info.namespaced ? ref.namespace : undefined, ref.name, (draft) => {
      const result = mutate(draft);
      return result ? (clone(toJson(result)) as KubeObject) : draft;
    }, { manager: options.manager ?? 'kubectl-edit', dryRun: false, scope: options.subresource ?? '' });
  }

  setReady(namespace: string, kind: string, name: string, readyReplicas: number): KubeObject {
    return this.controllers.setReady(this.kindOf(kind), namespace, name, readyReplicas);
  }

  markAllReady(): void {
    this.controllers.markAllReady();
  }

  bindPvc(namespace: string, name: string): KubeObject {
    return this.controllers.bindPvc(namespace, name);
  }

  failRollout(namespace: string, name: string, reason = 'ProgressDeadlineExceeded', kind = 'Deployment'): KubeObject {
    return this.controllers.failRollout(this.kindOf(kind), namespace, name, reason);
  }

  stepNamespaces(): number {
    return this.controllers.stepNamespaces();
  }

  setUnreachable(unreachable: boolean, mode: 'drop' | '503' = 'drop'): void {
    this.state.unreachable = unreachable ? mode : false;
  }

  injectError(match: RequestMatcher, status: number, times = 1, options: FaultOptions = {}): InjectedFault {
    const fault = createFault(match, status, times, options);
    this.state.faults.push(fault);
    return fault;
  }

  private kindOf(kind: string, apiVersion?: string): KindInfo {
    const info = apiVersion ? findByKind(apiVersion, kind) : findLoosely(kind);
    if (!info) throw new Error(`the kube emulator does not serve ${apiVersion ? `${apiVersion} ` : ''}${kind}`);
    return info;
  }
}

/** Starts an emulator on 127.0.0.1 with a port chosen by the OS. Close it when done. */
export async function startKubeEmulator(options: KubeEmulatorOptions = {}): Promise<KubeEmulator> {
  const emulator = new Emulator(options);
  emulator.url = await emulator.http.listen();
  return emulator;
}
