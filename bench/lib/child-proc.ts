/**
 * Starting bench/child.ts (a daemon in its own process) and talking to it over IPC, with a bound
 * on every wait so a stuck daemon fails the benchmark instead of hanging it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildCommand, ChildConfig } from '../child.js';

/** bench/child.js next to the compiled run.js, or bench/child.ts when run from source (tests). */
const childModule = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../child.ts' : '../child.js', import.meta.url));

type Message = { type: string; id?: number; data?: unknown; message?: string } & Record<string, unknown>;
type CommandInput = ChildCommand extends infer C ? (C extends ChildCommand ? Omit<C, 'id'> : never) : never;

export class DaemonChild {
  readonly proc: ChildProcess;
  private readonly listeners = new Set<(m: Message) => void>();
  private nextId = 1;
  private stderr = '';
  readonly exited: Promise<number | null>;

  constructor(config: ChildConfig, extraExecArgv: string[] = []) {
    // The parent's execArgv carries a TypeScript loader when run from source; keep it.
    this.proc = fork(childModule, [JSON.stringify(config)], {
      execArgv: [...process.execArgv.filter((a) => !a.startsWith('--cpu-prof')), ...extraExecArgv],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-20_000);
    });
    this.proc.on('message', (m: Message) => {
      for (const l of [...this.listeners]) l(m);
    });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  /** Calls `fn` with every message from the child until the returned function is called. */
  on(fn: (m: Message) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The first message of `type` (an `error` message from the child rejects). */
  waitFor<T>(type: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`bench child: no "${type}" within ${timeoutMs} ms\n${this.stderr}`));
      }, timeoutMs);
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        off();
        reject(new Error(`bench child exited (${code}) before "${type}"\n${this.stderr}`));
      };
      this.proc.once('exit', onExit);
      const off0 = this.on((m) => {
        if (m.type === 'error' && m.id === undefined) {
          clearTimeout(timer);
          off();
          reject(new Error(`bench child failed: ${m.message}`));
        } else if (m.type === type) {
          clearTimeout(timer);
          off();
          resolve(m as T);
        }
      });
      const off = () => {
        off0();
        this.proc.off('exit', onExit);
      };
    });
  }

  /** Send a command and wait for its reply. */
  request<T>(command: CommandInput, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`bench child: no reply to ${command.cmd} within ${timeoutMs} ms\n${this.stderr}`));
      }, timeoutMs);
      const off = this.on((m) => {
        if (m.id !== id) return;
        clearTimeout(timer);
        off();
        if (m.type === 'error') reject(new Error(`bench child: ${command.cmd} failed: ${m.message}`));
        else resolve(m.data as T);
      });
      this.proc.send({ ...command, id });
    });
  }

  /** Wait for the child to exit; kill it after `graceMs`. */
  async finish(graceMs = 30_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}
