import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TenantdError } from '../core/errors.js';

/**
 * One daemon per data dir: lowdb documents and the log must have a single writer. The lock file
 * holds the owner's pid; a lock left by a killed process (pid gone) is taken over.
 */
/** Locks held by this process: the pid alone cannot tell our own lock from a dead process's
 *  when pids repeat (a container's daemon has the same pid after every restart). */
const heldHere = new Set<string>();

export async function acquireDataDirLock(dataDir: string, pid = process.pid): Promise<() => Promise<void>> {
  const file = path.resolve(dataDir, 'daemon.lock');
  if (heldHere.has(file)) {
    throw new TenantdError('E_DATA_DIR_LOCKED', 'stalled', `${dataDir} is in use by another daemon in this process`, { dataDir, pid });
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fsp.writeFile(file, `${pid}\n`, { flag: 'wx' });
      heldHere.add(file);
      return async () => {
        heldHere.delete(file);
        await fsp.rm(file, { force: true });
      };
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((await fsp.readFile(file, 'utf8').catch(() => '')).trim());
      if (owner && owner !== pid && isAlive(owner)) {
        throw new TenantdError('E_DATA_DIR_LOCKED', 'stalled', `${dataDir} is in use by tenantd process ${owner}`, { dataDir, pid: owner });
      }
      await fsp.rm(file, { force: true });
    }
  }
  throw new TenantdError('E_DATA_DIR_LOCKED', 'stalled', `could not lock ${dataDir}`, { dataDir });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: unknown) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
