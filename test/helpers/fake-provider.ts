import { TenantdError, type ErrorKind } from '../../core/errors.js';
import type { DriftReport, InfrastructureProvider, PhaseResult, PlanResult, ProviderContext } from '../../providers/provider.js';

type Step = 'plan' | 'apply' | 'deploy' | 'configure' | 'verify' | 'destroy';

/**
 * A provider that records every call and fails on demand, for testing the reconciler's
 * behaviour on errors. It is a test double, never a stand-in for a real provider.
 */
export class ScriptedProvider implements InfrastructureProvider {
  readonly name = 'scripted';
  readonly calls: Array<{ step: Step; tenantId: string; operationId: string }> = [];
  private readonly failures = new Map<Step, Array<{ kind: ErrorKind; code: string }>>();
  /** Called inside a step (e.g. to block until a test releases it). */
  hook: ((step: Step, ctx: ProviderContext) => Promise<void>) | null = null;

  failNext(step: Step, times: number, kind: ErrorKind = 'retryable', code = 'E_TEST_FAILURE'): void {
    const list = this.failures.get(step) ?? [];
    for (let i = 0; i < times; i++) list.push({ kind, code });
    this.failures.set(step, list);
  }

  count(step: Step, tenantId?: string): number {
    return this.calls.filter((c) => c.step === step && (!tenantId || c.tenantId === tenantId)).length;
  }

  private async run(step: Step, ctx: ProviderContext): Promise<PhaseResult> {
    this.calls.push({ step, tenantId: ctx.tenantId, operationId: ctx.operationId });
    await this.hook?.(step, ctx);
    const failure = this.failures.get(step)?.shift();
    if (failure) throw new TenantdError(failure.code, failure.kind, `${step} failed on purpose`, { step });
    return { summary: `${step} ok`, ...(step === 'verify' ? { outputs: { namespace: `tenant-${ctx.tenantId}` } } : {}) };
  }

  async plan(ctx: ProviderContext): Promise<PlanResult> {
    await this.run('plan', ctx);
    return { summary: 'plan ok', changes: [] };
  }
  apply(ctx: ProviderContext): Promise<PhaseResult> {
    return this.run('apply', ctx);
  }
  deploy(ctx: ProviderContext): Promise<PhaseResult> {
    return this.run('deploy', ctx);
  }
  configure(ctx: ProviderContext): Promise<PhaseResult> {
    return this.run('configure', ctx);
  }
  verify(ctx: ProviderContext): Promise<PhaseResult> {
    return this.run('verify', ctx);
  }
  destroy(ctx: ProviderContext): Promise<PhaseResult> {
    return this.run('destroy', ctx);
  }
  async refresh(): Promise<DriftReport> {
    return { drifted: false, changes: [], corrected: false };
  }
}
