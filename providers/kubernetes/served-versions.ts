/**
 * Which version of each kind a cluster serves. The renderer writes the newest version of every kind
 * (one renderer for all providers); a cluster that does not serve it yet gets the newest version it
 * does serve, found by discovery. `policy/v1` PodDisruptionBudget, for one, is served from
 * Kubernetes 1.21 on, and `policy/v1beta1` stopped being served in 1.25.
 *
 * Only kinds whose versions carry the same fields are listed: the object is sent unchanged but for
 * its apiVersion. A kind none of whose versions is served makes the tenant INVALID (admit), never a
 * retry loop.
 */
import type { KubeObject, RenderedTenant } from '../resources/types.js';
import type { KubeClient } from './client.js';

/** Versions tenantd can send, newest first; the first is the one the renderer writes. */
export const VERSION_ALTERNATIVES: Readonly<Record<string, readonly string[]>> = {
  // Same spec in both for tenantd's objects: minAvailable/maxUnavailable and a non-empty selector
  // (an empty selector would mean "no pods" in v1beta1 and "all pods" in v1; tenantd never sends one).
  PodDisruptionBudget: ['policy/v1', 'policy/v1beta1'],
};

/** How long a discovery answer is trusted: a cluster upgrade is picked up within this time. */
const TTL_MS = 10 * 60_000;

export class ServedVersions {
  private readonly cache = new Map<string, { version: string; at: number }>();
  private serverVersion: string | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly now: () => Date,
  ) {}

  /** The version to send `obj` as: its own unless the cluster serves only an older alternative. */
  async versionFor(obj: KubeObject, signal: AbortSignal): Promise<string> {
    const alternatives = VERSION_ALTERNATIVES[obj.kind];
    if (!alternatives || !alternatives.includes(obj.apiVersion)) return obj.apiVersion;
    const candidates = alternatives.slice(alternatives.indexOf(obj.apiVersion));
    const key = `${obj.kind}:${candidates.join(',')}`;
    const hit = this.cache.get(key);
    const t = this.now().getTime();
    if (hit && t - hit.at < TTL_MS) return hit.version;
    const version = await this.client.servedVersion(obj.kind, candidates, signal);
    this.cache.set(key, { version, at: t });
    return version;
  }

  /** `rendered` with every object in a version the cluster serves (the same object when nothing changes). */
  async adapt(rendered: RenderedTenant, signal: AbortSignal): Promise<RenderedTenant> {
    let changed = false;
    const groups = { ...rendered.groups };
    for (const group of Object.keys(groups) as (keyof RenderedTenant['groups'])[]) {
      const objects: KubeObject[] = [];
      for (const obj of groups[group]) {
        const apiVersion = await this.versionFor(obj, signal);
        if (apiVersion === obj.apiVersion) objects.push(obj);
        else {
          changed = true;
          objects.push({ ...obj, apiVersion });
        }
      }
      groups[group] = objects;
    }
    return changed ? { ...rendered, groups } : rendered;
  }

  /** `v1.20.2`, for messages; `an unknown version` when /version does not say. */
  async clusterVersion(signal: AbortSignal): Promise<string> {
    if (this.serverVersion === undefined) {
      const body = await this.client.version(signal);
      this.serverVersion = typeof body.gitVersion === 'string' ? body.gitVersion : 'an unknown version';
    }
    return this.serverVersion;
  }
}
