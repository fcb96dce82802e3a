/** The phase machine's vocabulary: statuses a tenant can be in and the phases a reconcile walks. */
export const PHASES = ['Request', 'Plan', 'Apply', 'Deploy', 'Configure', 'Verify', 'Complete'] as const;
export type Phase = (typeof PHASES)[number];

/** Phases that do work through a provider (Request and Complete are bookkeeping). */
export const WORK_PHASES = ['Plan', 'Apply', 'Deploy', 'Configure', 'Verify'] as const satisfies readonly Phase[];
export type WorkPhase = (typeof WORK_PHASES)[number];

/** A deprovision walks fewer phases: Plan shows what goes, Apply destroys, Verify confirms it is gone. */
export const DELETE_PHASES = ['Request', 'Plan', 'Apply', 'Verify', 'Complete'] as const satisfies readonly Phase[];

export const STATUSES = [
  'PENDING',
  'PROVISIONING',
  'ACTIVE',
  'UPDATING',
  'DEPROVISIONING',
  'DEPROVISIONED',
  'FAILED',
  'SUSPENDED',
  'INVALID',
] as const;
export type TenantStatus = (typeof STATUSES)[number];

export type OperationKind = 'create' | 'update' | 'delete';

export const statusForOperation = (kind: OperationKind): TenantStatus =>
  kind === 'create' ? 'PROVISIONING' : kind === 'update' ? 'UPDATING' : 'DEPROVISIONING';

export const phasesFor = (kind: OperationKind): readonly Phase[] => (kind === 'delete' ? DELETE_PHASES : PHASES);

/** A state of the machine as it appears in transitions: `STATUS/Phase`, or `STATUS` alone. */
export type MachineState = string;
export const machineState = (status: TenantStatus, phase?: Phase | null): MachineState =>
  phase ? `${status}/${phase}` : status;
export function parseMachineState(state: MachineState): { status: TenantStatus; phase: Phase | null } {
  const [status, phase] = state.split('/') as [TenantStatus, Phase | undefined];
  return { status, phase: phase ?? null };
}
