import path from 'node:path';
import type { Test } from 'tap';
import type { ReconciliationEvent } from '../../core/events/events.js';
import { ReconciliationEventPublisher } from '../../core/events/publisher.js';
import { TransitionLog } from '../../core/log/transition-log.js';
import { TenantStateStore } from '../../core/state/store.js';
import { InfrastructureReconciler, type ReconcilerDeps } from '../../daemon/reconciler.js';
import type { InfrastructureProvider } from '../../providers/provider.js';
import { ScriptedProvider } from './fake-provider.js';

export interface ReconcilerHarness<P extends InfrastructureProvider> {
  dir: string;
  clock: { ms: number };
  store: TenantStateStore;
  log: TransitionLog;
  events: ReconciliationEvent[];
  provider: P;
  reconciler: InfrastructureReconciler;
}

/**
 * A reconciler over a real store and log in `dir` and a clock the test moves; the provider is a
 * ScriptedProvider unless one is given. Open it twice on one `dir` to see what survives a restart.
 */
export async function reconcilerHarness(t: Test, dir?: string): Promise<ReconcilerHarness<ScriptedProvider>>;
export async function reconcilerHarness<P extends InfrastructureProvider>(
  t: Test,
  dir: string | undefined,
  provider: P,
  deps?: Pick<ReconcilerDeps, 'stateKey' | 'deletionGate' | 'approvalTiers'>,
): Promise<ReconcilerHarness<P>>;
export async function reconcilerHarness(
  t: Test,
  dir = t.testdir(),
  provider: InfrastructureProvider = new ScriptedProvider(),
  deps: Pick<ReconcilerDeps, 'stateKey' | 'deletionGate' | 'approvalTiers'> = {},
): Promise<ReconcilerHarness<InfrastructureProvider>> {
  const clock = { ms: Date.UTC(2026, 10, 28, 12, 0, 0) };
  const now = (): Date => new Date(clock.ms);
  const store = await TenantStateStore.open(dir);
  const log = await TransitionLog.open({ path: path.join(dir, 'transitions.jsonl') });
  const publisher = new ReconciliationEventPublisher(now);
  const events: ReconciliationEvent[] = [];
  publisher.subscribe((e) => events.push(e));
  const reconciler = new InfrastructureReconciler({ provider, store, log, publisher, backoff: { baseMs: 1000, capMs: 8000 }, now, random: () => 0.5, ...deps });
  t.teardown(() => log.close());
  return { dir, clock, store, log, events, provider, reconciler };
}
