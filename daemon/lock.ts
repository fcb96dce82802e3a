import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TenantdError } from '../core/errors.js';
import { processAlive } from '../core/process-alive.js';

/**
 * One daemon per data dir: lowdb documents and the log must have a single writer. The lock file
 * holds the owner's pid; a lock left by a killed process (pid gone) is taken over.
 *
 * Replicas under leader election share a data dir and take the lock only while they hold the
 * Lease; their lock names it and the holder (`<pid> lease=<namespace>/<name> holder=<identity>`: pids
 * repeat across pods). The Lease, not the pid, says who
 * the one writer is — the old holder may live on in another pod, fenced — so a replica holding the
 * same Lease takes such a lock over, and a daemon without leader election refuses it.
 */
/** Locks held by this process: the pid alone cannot tell our own lock from a dead process's
 *  when pids repeat (a container's daemon has the same pid after every restart). */
const heldHere = new Set<string>();

export async function acquireDataDirLock(dataDir: string, pid = process.pid, opts: { lease?: string; holder?: string } = {}): Promise<() => Promise<void>> {
  const file = path.resolve(dataDir, 'daemon.lock');
  const content = opts.lease ? `${pid} lease=${opts.lease} holder=${opts.holder ?? ''}\n` : `${pid}\n`;
  if (heldHere.has(file)) {
    throw new TenantdError('E_DATA_DIR_LOCKED', 'stalled', `${dataDir} is in use by another daemon in this process`, { dataDir, pid });
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fsp.writeFile(file, content, { flag: 'wx' });
      heldHere.add(file);
      return async () => {
        heldHere.delete(file);
        // A lease lock may have been taken over by the next leader meanwhile: leave theirs alone.
        if ((await fsp.readFile(file, 'utf8').catch(() => null)) === content) await fsp.rm(file, { force: true });
      };
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const [ownerText = '', leaseTag] = (await fsp.readFile(file, 'utf8').catch(() => '')).trim().split(/\s+/);
      const owner = Number(ownerText);
      const lease = leaseTag?.startsWith('lease=') ? leaseTag.slice('lease='.length) : null;
      if (lease !== null && lease !== opts.lease) {
        throw new TenantdError(
          'E_DATA_DIR_LOCKED',
          'stalled',
          `${dataDir} belongs to replicas elected by the Lease ${lease}: start this daemon with --leader-elect and that Lease, or remove ${file} if none of them runs any more`,
          { dataDir, lease },
        );
      }
      if (lease === null && owner && owner !== pid && processAlive(owner)) {
        throw new TenantdError('E_DATA_DIR_LOCKED', 'stalled', `${dataDir} is in use by tenantd process ${owner}`, { dataDir, pid: owner });
      }
      await fsp.rm(file, { force: true });
    }
  }
  throw new TenantdError('E_DATA_DIR_LOCKED', 'stalled', `could not lock ${dataDir}`, { dataDir });
}
