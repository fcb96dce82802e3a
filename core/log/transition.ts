import type { MachineState } from '../phases.js';

/**
 * One change of status or phase of one tenant: the seed's InfrastructureStateTransition.
 * `trigger` names the cause: `commit:<sha>`, `poll`, `webhook:<delivery>`, `api:<request-id>`,
 * `retry:<attempt>`, `resume`, `drift`.
 */
export interface InfrastructureStateTransition {
  id: string;
  tenantId: string;
  fromState: MachineState;
  toState: MachineState;
  trigger: string;
  details: Record<string, unknown>;
  /** ISO-8601. */
  timestamp: string;
}
