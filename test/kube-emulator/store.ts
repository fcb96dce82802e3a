/**
 * The object store: etcd's role. Objects are keyed by resource, namespace and name; every write
 * takes the next value of one global resourceVersion counter, and every change becomes a watch
 * event kept in a bounded history (so a watch can resume from a recent resourceVersion).
 */
import { clone, type KubeObject } from './json.js';
import type { KindInfo } from './kinds.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: EventType;
  info: KindInfo;
  /** A snapshot, with apiVersion and kind set. */
  object: KubeObject;
  resourceVersion: number;
}

export type StoreListener = (event: StoreEvent) => void;

const HISTORY_LIMIT = 1000;

function keyOf(info: KindInfo, namespace: string | undefined, name: string): string {
  return `${info.group}/${info.plural}/${namespace ?? ''}/${name}`;
}

export class ObjectStore {
  private readonly objects = new Map<string, { info: KindInfo; object: KubeObject }>();
  private readonly listeners = new Set<StoreListener>();
  private readonly history: StoreEvent[] = [];
  /** Starts well above zero, as on a real cluster, so "0" never names a real version. */
  private revision = 1000;

  get currentResourceVersion(): string {
    return String(this.revision);
  }

  /** The stored object itself (callers must clone before handing it out or changing it). */
  peek(info: KindInfo, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(keyOf(info, namespace, name))?.object;
  }

  get(info: KindInfo, namespace: string | undefined, name: string): KubeObject | undefined {
    const found = this.peek(info, namespace, name);
    return found ? clone(found) : undefined;
  }

  /** Objects of one kind (in one namespace, or all), ordered by namespace then name like etcd keys. */
  list(info: KindInfo, namespace?: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const { info: i, object } of this.objects.values()) {
      if (i !== info) continue;
      if (namespace !== undefined && object.metadata.namespace !== namespace) continue;
      out.push(clone(object));
    }
    return out.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
  }

  /** Every stored object in a namespace, of every kind. */
  inNamespace(namespace: string): { info: KindInfo; object: KubeObject }[] {
    return [...this.objects.values()]
      .filter(({ info, object }) => info.namespaced && object.metadata.namespace === namespace)
      .map(({ info, object }) => ({ info, object: clone(object) }));
  }

  all(): { info: KindInfo; object: KubeObject }[] {
    return [...this.objects.values()].map(({ info, object }) => ({ info, object: clone(object) }));
  }

  /** Stores `object` under a new resourceVersion and returns the stored copy. */
  put(info: KindInfo, object: KubeObject): KubeObject {
    const key = keyOf(info, strOrUndefined(object.metadata.namespace), String(object.metadata.name));
    const type: EventType = this.objects.has(key) ? 'MODIFIED' : 'ADDED';
    this.revision++;
    const stored = clone(object);
    stored.metadata.resourceVersion = String(this.revision);
    this.objects.set(key, { info, object: stored });
    this.emit({ type, info, object: clone(stored), resourceVersion: this.revision });
    return clone(stored);
  }

  remove(info: KindInfo, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = keyOf(info, namespace, name);
    const entry = this.objects.get(key);
    if (!entry) return undefined;
    this.objects.delete(key);
    this.revision++;
    const gone = clone(entry.object);
    gone.metadata.resourceVersion = String(this.revision);
    this.emit({ type: 'DELETED', info, object: clone(gone), resourceVersion: this.revision });
    return gone;
  }

  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Events after `resourceVersion`, or undefined when the history no longer reaches back that far. */
  eventsSince(resourceVersion: number): StoreEvent[] | undefined {
    const oldest = this.history[0];
    if (resourceVersion >= this.revision) return [];
    if (!oldest || oldest.resourceVersion > resourceVersion + 1) return undefined;
    return this.history.filter((e) => e.resourceVersion > resourceVersion);
  }

  private emit(event: StoreEvent): void {
    this.history.push(event);
    if (this.history.length > HISTORY_LIMIT) this.history.shift();
    for (const listener of [...this.listeners]) listener(event);
  }
}

function strOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function sortKey(obj: KubeObject): string {
  return `${String(obj.metadata.namespace ?? '')}/${String(obj.metadata.name ?? '')}`;
}
