import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsLoader = pathToFileURL(path.join(root, 'node_modules/@tapjs/typescript/dist/esm/import.mjs')).href;

export interface DaemonProcess {
  child: ChildProcess;
  /** stdout and stderr as they arrived */
  output(): string;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A real `tenantd` process (the CLI run from source through tap's TypeScript loader). */
export function spawnTenantd(args: string[], env: Record<string, string> = {}, cwd = root): DaemonProcess {
  return spawnScript(path.join(root, 'daemon/cli.ts'), args, env, cwd);
}

/** A TypeScript file of this repository run as a process of its own, from source. */
export function spawnScript(script: string, args: string[], env: Record<string, string> = {}, cwd = root): DaemonProcess {
  const child = spawn(process.execPath, ['--import', tsLoader, script, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Poll `check` every 20 ms until it returns true; fail after `ms`. */
export async function waitFor(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
