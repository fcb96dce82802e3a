/**
 * Transition log: one durable append (write + fdatasync) when the log already holds 100,000
 * transitions. The log is written first as realistic JSON lines, then opened (indexed) by
 * TransitionLog like a daemon start does.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { TransitionLog } from '../../core/log/transition-log.js';
import type { InfrastructureStateTransition } from '../../core/log/transition.js';
import { writeChunk } from '../lib/git.js';
import { figure, row, type Row } from '../lib/report.js';
import { timed } from '../lib/stats.js';
import { tenantId } from '../lib/tenants.js';

const STATES = ['PENDING', 'PROVISIONING/Request', 'PROVISIONING/Plan', 'PROVISIONING/Apply', 'PROVISIONING/Deploy', 'PROVISIONING/Configure', 'PROVISIONING/Verify', 'ACTIVE/Complete'];

function transition(k: number, fleet: number): InfrastructureStateTransition {
  const step = k % 7;
  const tenant = tenantId(Math.floor(k / 7) % fleet);
  const commit = (0x1000000 + k).toString(16).padStart(40, 'a');
  return {
    id: `00000000-0000-4000-8000-${k.toString(16).padStart(12, '0')}`,
    tenantId: tenant,
    fromState: STATES[step] as string,
    toState: STATES[step + 1] as string,
    trigger: `commit:${commit}`,
    details: { operationId: `op-${Math.floor(k / 7)}`, commit },
    timestamp: new Date(Date.UTC(2030, 0, 1) + k * 1000).toISOString(),
  } as InfrastructureStateTransition;
}

export async function transitionLog(root: string, existing: number, runs: number, appendsPerRun: number): Promise<Row[]> {
  const file = path.join(root, 'transitions.jsonl');
  const out = createWriteStream(file);
  let batch = '';
  for (let k = 0; k < existing; k++) {
    batch += `${JSON.stringify(transition(k, 10_000))}\n`;
    if (batch.length > 1 << 20) {
      await writeChunk(out, batch);
      batch = '';
    }
  }
  await new Promise<void>((resolve, reject) => out.end(batch, () => resolve()).on('error', reject));
  const size = (await fsp.stat(file)).size;

  const opens: number[] = [];
  const appends: number[] = [];
  let total = 0;
  let next = existing;
  for (let run = 0; run < runs; run++) {
    const [openMs, log] = await timed(() => TransitionLog.open({ path: file }));
    opens.push(openMs);
    try {
      for (let a = 0; a < appendsPerRun; a++) {
        const [ms] = await timed(() => log.append(transition(next++, 10_000)));
        appends.push(ms);
      }
      total = log.total;
    } finally {
      await log.close();
    }
  }
  await fsp.rm(file, { force: true });
  const f = figure(appends);
  return [
    row({
      scenario: `transition log: 1 append at ${existing.toLocaleString('en-US')}`,
      tenants: null,
      unit: 'ms',
      tenantd: f,
      native: null,
      target: '≤ 1 ms median, fsync’d',
      met: f.median <= 1 && total === next,
      check: `write + fdatasync each; log held ${total.toLocaleString('en-US')} entries (${(size / 1024 / 1024).toFixed(0)} MB) at the end`,
    }),
    row({
      scenario: 'transition log: open (index) the log',
      tenants: null,
      unit: 'ms',
      tenantd: figure(opens),
      native: null,
      target: '-',
      met: null,
      check: `${existing.toLocaleString('en-US')}+ entries scanned, torn-tail check`,
    }),
  ];
}
