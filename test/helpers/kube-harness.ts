/**
 * The kubernetes provider, phase by phase, against the real test cluster (kube-target.ts): a
 * provider pointed at the cluster (or at the recording proxy in front of it), the progress it
 * reports, and a ProviderContext per tenant document.
 */
import type { Test } from 'tap';
import { TenantdError } from '../../core/errors.js';
import type { TenantInfrastructureDocument } from '../../core/tenant/types.js';
import { createKubernetesProvider, type KubernetesProviderOptions } from '../../providers/kubernetes/provider.js';
import type { InfrastructureProvider, PhaseResult, ProviderContext } from '../../providers/provider.js';
import { renderTenant } from '../../providers/resources/renderer.js';
import type { KubeObjectRef, RenderedTenant } from '../../providers/resources/types.js';
import { startKubeProxy, type KubeProxy } from './kube-proxy.js';
import { startKubeTarget, type KubeTarget } from './kube-target.js';

export interface Progress {
  message: string;
  data?: Record<string, unknown>;
}

export interface Harness {
  target: KubeTarget;
  provider: InfrastructureProvider;
  /** The recording proxy the provider talks through, when asked for. */
  proxy: KubeProxy | undefined;
  progress: Progress[];
  ctx(doc: TenantInfrastructureDocument, options?: { desired?: RenderedTenant | null; signal?: AbortSignal }): ProviderContext;
}

export async function harness(t: Test, providerOptions: KubernetesProviderOptions = {}, options: { proxy?: boolean } = {}): Promise<Harness> {
  const target = await startKubeTarget(t);
  const proxy = options.proxy ? await startKubeProxy(t, target.kubeConfig) : undefined;
  const provider = createKubernetesProvider({ kubeConfig: proxy?.kubeConfig ?? target.kubeConfig, pollIntervalMs: 100, ...providerOptions });
  t.teardown(() => provider.close?.());
  const progress: Progress[] = [];
  return {
    target,
    provider,
    proxy,
    progress,
    ctx(doc, opts = {}) {
      return {
        tenantId: doc.metadata.tenantId,
        tenant: doc,
        desired: opts.desired === undefined ? renderTenant(doc) : opts.desired,
        operationId: 'op-1',
        signal: opts.signal ?? new AbortController().signal,
        progress: (message, data) => progress.push({ message, ...(data ? { data } : {}) }),
      };
    },
  };
}

/** Apply, Deploy and Configure in order, as the reconciler runs them. */
export async function applyAll(p: InfrastructureProvider, ctx: ProviderContext): Promise<PhaseResult[]> {
  return [await p.apply(ctx), await p.deploy(ctx), await p.configure(ctx)];
}

export async function rejectsWith(t: Test, promise: Promise<unknown>, code: string, kind?: string): Promise<TenantdError> {
  try {
    await promise;
  } catch (err: unknown) {
    t.ok(err instanceof TenantdError, `a TenantdError (got ${String(err)})`);
    const e = err as TenantdError;
    t.equal(e.code, code, `code ${code}: ${e.message}`);
    if (kind) t.equal(e.kind, kind, `kind ${kind}`);
    return e;
  }
  t.fail(`expected ${code}`);
  throw new Error(`expected ${code}`);
}

export const ns = (id: string): string => `tenant-${id}`;
export const dep = (id: string, name: string): KubeObjectRef => ({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: ns(id) });
export const svc = (id: string, name: string): KubeObjectRef => ({ apiVersion: 'v1', kind: 'Service', name, namespace: ns(id) });
export const sts = (id: string): KubeObjectRef => ({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'postgres', namespace: ns(id) });

/** `Kind/name` of what lives in a namespace, over the kinds tenantd renders and the cluster adds. */
export async function objectsIn(target: KubeTarget, namespace: string): Promise<string[]> {
  const kinds: [string, string][] = [
    ['v1', 'ConfigMap'],
    ['v1', 'Secret'],
    ['v1', 'ServiceAccount'],
    ['v1', 'Service'],
    ['v1', 'PersistentVolumeClaim'],
    ['v1', 'ResourceQuota'],
    ['v1', 'LimitRange'],
    ['apps/v1', 'Deployment'],
    ['apps/v1', 'StatefulSet'],
    ['networking.k8s.io/v1', 'NetworkPolicy'],
    ['networking.k8s.io/v1', 'Ingress'],
  ];
  const out: string[] = [];
  for (const [apiVersion, kind] of kinds) for (const o of await target.list(apiVersion, kind, namespace)) out.push(`${kind}/${o.metadata.name}`);
  return out.sort();
}
