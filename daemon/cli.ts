#!/usr/bin/env node
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTenantdError } from '../core/errors.js';
import { daemonHelp, parseDaemonConfig } from './config.js';
import { TenantdDaemon } from './daemon.js';
import { initTenantsRepo } from './init-repo.js';
import { formatPlan, planCommand, parsePlanArgs } from './plan-command.js';
import { formatValidation, validatePaths } from './validate-command.js';

export interface CliIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal: Promise<string>;
}

const USAGE = `Usage: tenantd <command> [options]

Commands:
  daemon             watch the tenants repository and reconcile (see tenantd daemon --help)
  validate <paths…>  check tenant files; prints file:line:column errors, exit 1 if any is invalid
  plan               what would change per tenant between two revisions, or against the status
  init <dir>         create a tenants repository (branch main) with the example tenants
`;

/** Runs one command; returns the process exit code. */
export async function runCli(io: CliIo): Promise<number> {
  const [command, ...rest] = io.argv;
  try {
    switch (command) {
      case 'daemon':
        return await daemonCommand(rest, io);
      case 'validate': {
        const result = await validatePaths(rest, io.cwd);
        (result.issues.length ? io.err : io.out)(formatValidation(result));
        return result.issues.length ? 1 : 0;
      }
      case 'plan': {
        const args = parsePlanArgs(rest, io.cwd);
        const plan = await planCommand(args);
        io.out(formatPlan(plan));
        if (plan.invalid > 0) return 1;
        return args.detailedExitCode && plan.changed > 0 ? 2 : 0;
      }
      case 'init': {
        if (rest.length !== 1 || rest[0]?.startsWith('-')) {
          io.err('Usage: tenantd init <dir>\n');
          return 64;
        }
        const dir = path.resolve(io.cwd, rest[0] as string);
        const commit = await initTenantsRepo(dir);
        io.out(`Initialized a tenants repository in ${dir} (branch main, commit ${commit.slice(0, 12)})\n`);
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return command === undefined ? 64 : 0;
      default:
        io.err(`tenantd: unknown command "${command}"\n\n${USAGE}`);
        return 64;
    }
  } catch (err: unknown) {
    if (isTenantdError(err)) {
      io.err(`tenantd: ${err.code}: ${err.message}\n`);
      return err.code === 'E_CONFIG' || err.code === 'E_USAGE' ? 64 : 1;
    }
    io.err(`tenantd: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

async function daemonCommand(args: string[], io: CliIo): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.out(daemonHelp());
    return 0;
  }
  const config = parseDaemonConfig(args, io.env, io.cwd);
  const daemon = await TenantdDaemon.open(config, { write: io.out });
  const repo = config.repo ?? path.join(config.dataDir, 'tenants');
  io.out(
    `tenantd: watching ${repo} (branch ${config.branch}) with the ${config.provider} provider; data in ${config.dataDir}\n` +
      (config.repo === null ? `tenantd: embedded repository: edit ${path.join(repo, 'tenants')}/*.yaml and commit with git; status lands in status/\n` : ''),
  );
  await daemon.start();
  const signal = await io.stopSignal;
  io.out(`tenantd: ${signal} received, finishing the current checkpoint\n`);
  await daemon.stop();
  io.out('tenantd: stopped\n');
  return 0;
}

function processStopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const code = await runCli({
    argv: process.argv.slice(2),
    env: process.env,
    cwd: process.cwd(),
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    stopSignal: processStopSignal(),
  });
  // Every timer was stopped by daemon.stop(); exiting explicitly guards against a stray handle keeping a stopped daemon alive.
  process.exit(code);
}
