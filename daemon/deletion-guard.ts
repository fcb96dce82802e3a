/**
 * The mass-deletion circuit breaker in the daemon: gathers the facts of each change of the tracked
 * branch (what would be deprovisioned, the fleet, ancestry, approval trailers), lets
 * core/deletion/guard.ts decide, keeps the decision in `<dataDir>/deletion-guard.json` (so a hold
 * survives a restart), and answers the reconciler's question "may this tenant be deprovisioned?".
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { replaceFileDurably } from '../core/durable-replace.js';
import {
  approvalTrailers,
  approveHold,
  decide,
  emptyGuardState,
  explainHold,
  isApplied,
  startsDeprovision,
  type Decision,
  type DeletionHold,
  type DeletionLimit,
  type GuardState,
} from '../core/deletion/guard.js';
import { stalled } from '../core/errors.js';
import type { ReconciliationEventPublisher } from '../core/events/publisher.js';
import type { Comparison } from '../core/git/history.js';
import type { TenantStateStore } from '../core/state/store.js';

export const GUARD_FILE = 'deletion-guard.json';

/** What the reconciler is told about a tenant whose file is gone. */
export type DeletionVerdict = { kind: 'allowed' } | { kind: 'held'; message: string } | { kind: 'unevaluated' };

export interface DeletionGuardDeps {
  dataDir: string;
  limit: DeletionLimit;
  store: TenantStateStore;
  /** The desired listing at the head just loaded. */
  desired: { has(tenantId: string): boolean; size: number };
  git: { compare(base: string, head: string, opts?: { limit?: number }): Promise<Comparison> };
  publisher: ReconciliationEventPublisher;
  now: () => Date;
  /** Asked before the decision is written; throws to refuse it (a replica without the leader lease). */
  fence?: (what: string) => void;
}

/** Commits scanned for approval trailers in one change. */
const TRAILER_SCAN = 500;

export class DeletionGuard {
  private constructor(
    private readonly deps: DeletionGuardDeps,
    private state: GuardState,
    private readonly file: string,
  ) {}

  static async open(deps: DeletionGuardDeps): Promise<DeletionGuard> {
    const file = path.join(deps.dataDir, GUARD_FILE);
    return new DeletionGuard(deps, await readGuardState(file), file);
  }

  /** Read the decision again (another replica, the leader before this one, may have written it). */
  async reload(): Promise<void> {
    this.state = await readGuardState(this.file);
  }

  /** The last head acted on (persisted): a branch missing now had history. */
  get lastHead(): string | null {
    return this.state.lastHead;
  }

  get hold(): DeletionHold | null {
    return this.state.hold;
  }

  verdict(tenantId: string): DeletionVerdict {
    const hold = this.state.hold;
    if (hold?.tenants.includes(tenantId)) return { kind: 'held', message: explainHold(hold) };
    return this.state.allowed.includes(tenantId) ? { kind: 'allowed' } : { kind: 'unevaluated' };
  }

  /**
   * After the loader moved from `previous` to `head`: evaluate the tenants in `ids` (those whose
   * file changed, or every record after a restart) plus the ones already held or allowed.
   * Returns the tenants to queue now because a hold ended for them.
   */
  async evaluate(head: string, previous: string | null, ids: Iterable<string>): Promise<Decision> {
    const pending: string[] = [];
    const seen = new Set<string>();
    for (const id of [...ids, ...(this.state.hold?.tenants ?? []), ...this.state.allowed]) {
      if (seen.has(id)) continue;
      seen.add(id);
      const record = this.deps.store.get(id);
      if (record && !this.deps.desired.has(id) && startsDeprovision(record)) pending.push(id);
    }
    let fleet = 0;
    let fastForward = true;
    let trailers: number[] = [];
    const mayHold = pending.some((id) => !this.state.allowed.includes(id)) || this.state.hold !== null;
    if (mayHold) {
      // Only a change that deletes something needs the fleet, the ancestry and the trailers.
      for (const r of this.deps.store.all()) if (isApplied(r)) fleet++;
      if (previous !== null && previous !== head) {
        const cmp = await this.deps.git.compare(previous, head, { limit: TRAILER_SCAN });
        fastForward = cmp.fastForward;
        trailers = cmp.newCommits.flatMap((c) => approvalTrailers(c.message));
      }
    }
    const decision = decide(
      this.state,
      { head, previous, pending, fleet, listingEmpty: this.deps.desired.size === 0, fastForward, trailers, now: this.deps.now().toISOString() },
      this.deps.limit,
    );
    await this.save(decision.state);
    this.announce(decision);
    return decision;
  }

  /** A person approved the hold at `commit`: its tenants may be deprovisioned. */
  async approve(commit: string, by: string): Promise<Decision> {
    const result = approveHold(this.state, commit, by);
    if ('refused' in result) {
      if (result.refused === 'none') throw stalled('E_NO_DELETION_HOLD', 'no deletion is held: there is nothing to approve');
      throw stalled(
        'E_DELETION_HOLD_CHANGED',
        `the deletion hold is at commit ${result.hold?.commit ?? '-'} (${result.hold?.tenants.length ?? 0} tenant(s)), not ${commit}: review it again (GET /api/v1/deletions) and approve that commit`,
        { hold: result.hold },
      );
    }
    await this.save(result.state);
    this.announce(result);
    return result;
  }

  private announce(d: Decision): void {
    const e = d.event;
    if (!e) return;
    if (e.kind === 'held') {
      const h = e.hold;
      this.deps.publisher.publish({ type: 'DeletionHeld', commit: h.commit, previous: h.previous, reasons: h.reasons, tenants: h.tenants.length, added: e.added.length, limit: h.limit, fleet: h.fleet, message: explainHold(h) });
    } else if (e.kind === 'approved') {
      this.deps.publisher.publish({ type: 'DeletionHoldEnded', commit: e.commit, how: 'approved', by: e.by, tenants: e.tenants.length });
    } else {
      this.deps.publisher.publish({ type: 'DeletionHoldEnded', commit: e.commit, how: 'restored', by: null, tenants: 0 });
    }
  }

  /** Durable before anything acts on it: temp file, fsync, rename, fsync of the directory. */
  private async save(next: GuardState): Promise<void> {
    if (JSON.stringify(next) === JSON.stringify(this.state)) return;
    this.deps.fence?.(`the deletion guard's decision to ${this.file}`);
    await replaceFileDurably(this.file, `${JSON.stringify(next, null, 2)}\n`);
    this.state = next;
  }
}

async function readGuardState(file: string): Promise<GuardState> {
  let state = emptyGuardState();
  let text: string | null = null;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== null) {
    try {
      state = { ...emptyGuardState(), ...(JSON.parse(text) as Partial<GuardState>) };
    } catch {
      // A hold must never be forgotten silently: refuse to start rather than deprovision.
      throw stalled('E_GUARD_STATE', `${file} is not valid JSON: fix or remove it (removing it forgets any deletion hold)`, { file });
    }
  }
  return state;
}
