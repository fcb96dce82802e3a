/**
 * Where the Kubernetes provider tests run: the emulator under `test/kube-emulator/` by default, or a
 * real cluster when `TENANTD_TEST_KUBECONFIG` names a kubeconfig (`TENANTD_TEST_KUBE_CONTEXT`
 * optionally picks its context). The same tests run against both:
 *
 *   const target = await startKubeTarget(t, { controllerDelayMs: 1 });
 *   const id = target.tenantId('acme');              // unique per run on a real cluster
 *   const live = await target.get({ apiVersion: 'v1', kind: 'Namespace', name: `tenant-${id}` });
 *   const emu = target.emulator(t);                   // undefined (and the test skipped) on a real cluster
 *
 * On a real cluster every tenant namespace a test created through `tenantId()` is deleted at
 * teardown. Tests that need the emulator's controls (readiness, faults, namespace stepping) call
 * `target.emulator(t)` and return when it is undefined.
 */
import { randomBytes } from 'node:crypto';
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import type { Test } from 'tap';
import { namespaceFor } from '../../core/tenant/types.js';
import { KubeClient, type LiveObject } from '../../providers/kubernetes/client.js';
import type { KubeObjectRef } from '../../providers/resources/types.js';
import { startKubeEmulator, type KubeEmulator, type KubeEmulatorOptions } from '../kube-emulator/index.js';

export const REAL_KUBECONFIG = process.env.TENANTD_TEST_KUBECONFIG ?? '';

export interface KubeTarget {
  readonly kind: 'emulator' | 'cluster';
  readonly kubeConfig: KubeConfig;
  /** The emulator; on a real cluster undefined (a comment on `t` says what is skipped). */
  emulator(t: Test, why?: string): KubeEmulator | undefined;
  /** A tenant id for this test: the base on the emulator, `<base>-<run id>` on a real cluster. */
  tenantId(base: string): string;
  /** Reads an object as the server has it (null when absent), on either target. */
  get(ref: KubeObjectRef): Promise<LiveObject | null>;
  /** Changes an object as another field manager (default `kubectl-edit`) with a JSON merge patch. */
  edit(ref: KubeObjectRef, mergePatch: Record<string, unknown>, manager?: string): Promise<void>;
  /** Deletes an object behind tenantd's back. */
  remove(ref: KubeObjectRef): Promise<void>;
}

function mergeInto(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete target[k];
    else if (typeof v === 'object' && !Array.isArray(v) && typeof target[k] === 'object' && target[k] !== null && !Array.isArray(target[k])) {
      mergeInto(target[k] as Record<string, unknown>, v as Record<string, unknown>);
    } else target[k] = structuredClone(v);
  }
}

export async function startKubeTarget(t: Test, options: KubeEmulatorOptions = {}): Promise<KubeTarget> {
  const signal = (): AbortSignal => AbortSignal.timeout(30_000);
  if (!REAL_KUBECONFIG) {
    const emu = await startKubeEmulator({ controllerDelayMs: 1, namespaceStepMs: 2, ...options });
    t.teardown(() => emu.close());
    const kubeConfig = emu.kubeConfig();
    const client = new KubeClient('kube-emulator', kubeConfig);
    return {
      kind: 'emulator',
      kubeConfig,
      emulator: () => emu,
      tenantId: (base) => base,
      get: (ref) => client.get(ref, signal()),
      async edit(ref, mergePatch, manager = 'kubectl-edit') {
        emu.edit({ apiVersion: ref.apiVersion, kind: ref.kind, name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) }, (o) => {
          mergeInto(o, mergePatch);
        }, { manager });
      },
      async remove(ref) {
        await client.delete(ref, { propagationPolicy: 'Background' }, signal());
      },
    };
  }

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(REAL_KUBECONFIG);
  if (process.env.TENANTD_TEST_KUBE_CONTEXT) kubeConfig.setCurrentContext(process.env.TENANTD_TEST_KUBE_CONTEXT);
  const client = new KubeClient(kubeConfig.getCurrentContext(), kubeConfig);
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const run = randomBytes(3).toString('hex');
  const created = new Set<string>();
  t.teardown(async () => {
    for (const id of created) {
      await client.delete({ apiVersion: 'v1', kind: 'Namespace', name: namespaceFor(id) }, { propagationPolicy: 'Background' }, signal()).catch(() => undefined);
    }
  });
  return {
    kind: 'cluster',
    kubeConfig,
    emulator(test, why = 'needs the emulator’s controls') {
      test.comment(`real cluster: the rest of this test is skipped (${why})`);
      return undefined;
    },
    tenantId(base) {
      const id = `${base}-${run}`;
      created.add(id);
      return id;
    },
    get: (ref) => client.get(ref, signal()),
    async edit(ref, mergePatch, manager = 'kubectl-edit') {
      const body = { apiVersion: ref.apiVersion, kind: ref.kind, ...mergePatch, metadata: { name: ref.name, namespace: ref.namespace, ...((mergePatch.metadata as object | undefined) ?? {}) } };
      await objects.patch(body as KubernetesObject, undefined, undefined, manager, undefined, PatchStrategy.MergePatch);
    },
    async remove(ref) {
      await client.delete(ref, { propagationPolicy: 'Background' }, signal());
    },
  };
}

/** Polls `probe` until it returns something other than undefined/false (real time; for emulator controllers). */
export async function eventually<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
