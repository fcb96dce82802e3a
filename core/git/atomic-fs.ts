/**
 * isomorphic-git writes refs, loose objects, pack files and the index in place
 * (`writeFile` truncates, then writes). A reader in between — our own `resolve`/`listFiles`
 * running while a commit or fetch is in flight, or the user's native git — can see an empty
 * ref (a branch that "does not exist") or a half-written pack index (which isomorphic-git then
 * caches). This wrapper makes every `promises.writeFile` atomic: write a sibling temporary
 * file, then rename it over the target.
 *
 * The temporary name ends in `.lock` (`<file>.tenantd-<random>.lock`) so that native git never
 * mistakes a leftover for a ref, and never equals git's own `<file>.lock`.
 */
import type * as nodeFs from 'node:fs';
import { randomBytes } from 'node:crypto';

type WriteFile = typeof nodeFs.promises.writeFile;

export function atomicWriteFs(fs: typeof nodeFs): typeof nodeFs {
  const original: WriteFile = fs.promises.writeFile.bind(fs.promises);
  const writeFile = async (file: Parameters<WriteFile>[0], data: Parameters<WriteFile>[1], options?: Parameters<WriteFile>[2]) => {
    if (typeof file !== 'string') return original(file, data, options);
    const tmp = `${file}.tenantd-${randomBytes(6).toString('hex')}.lock`;
    try {
      await original(tmp, data, options);
      await fs.promises.rename(tmp, file);
    } catch (err: unknown) {
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  };
  // isomorphic-git uses `fs.promises` when it is an enumerable own property, as here
  return { ...fs, promises: { ...fs.promises, writeFile: writeFile as WriteFile } } as typeof nodeFs;
}
