#!/usr/bin/env node
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiAuthenticator } from '../api/app.js';
import { createAuthenticator, ensureBootstrapToken } from '../api/auth/index.js';
import { isTenantdError, TenantdError } from '../core/errors.js';
import type { LogLevel } from '../core/events/publisher.js';
import { startApiServer, type ApiServer } from './api-server.js';
import { daemonHelp, parseDaemonConfig, type DaemonConfig } from './config.js';
import { TenantdDaemon } from './daemon.js';
import { applyHeapPolicy } from './heap-policy.js';
import { displayRepo, logLine } from './log-line.js';
import { initTenantsRepo } from './init-repo.js';
import { formatPlan, planCommand, parsePlanArgs } from './plan-command.js';
import { tokenCommand } from './token-command.js';
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
  token <action>     create, list or revoke named API tokens (tenantd token --help)
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
      case 'token':
        io.out(await tokenCommand(rest, io.cwd, io.env));
        return 0;
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
  applyHeapPolicy(io.env);
  const daemon = await TenantdDaemon.open(config, { write: io.out });
  const repo = config.repo ?? path.join(config.dataDir, 'tenants');
  const line = (level: LogLevel, msg: string, fields?: Record<string, unknown>): string => logLine(config.logFormat, level, msg, fields);
  io.out(
    line('info', `watching ${displayRepo(repo)} (branch ${config.branch}) with the ${config.provider} provider; data in ${config.dataDir}`) +
      (config.repo === null ? line('info', `embedded repository: edit ${path.join(repo, 'tenants')}/*.yaml and commit with git; status lands in status/`) : ''),
  );
  let api: ApiServer;
  try {
    api = await startApiServer(daemon, {
      host: config.host,
      port: config.port,
      auth: await createDaemonAuthenticator(config, io, line),
      webhookSecrets: config.webhookSecrets,
      logError: (requestId, err) => io.err(`${JSON.stringify({ level: 'error', msg: 'API request failed', requestId, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })}\n`),
    });
  } catch (err: unknown) {
    await daemon.stop();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new TenantdError('E_CONFIG', 'stalled', `--port (PORT) = ${config.port}: the port is already in use on ${config.host}`, { field: 'port' });
    }
    throw err;
  }
  io.out(line('info', `API on ${api.url} (webhooks ${config.webhookSecrets.length ? 'on' : 'off: set --webhook-secret'})`, { url: api.url }));
  await daemon.start();
  const signal = await io.stopSignal;
  io.out(line('info', `${signal} received, finishing the current checkpoint`));
  await api.close();
  await daemon.stop();
  io.out(line('info', 'stopped'));
  return 0;
}

/**
 * Tokens file, JWTs, or — with nothing configured — a generated admin token. Its plaintext goes
 * only to a file with mode 0600, never to stdout or stderr (container logs): stderr says where.
 */
async function createDaemonAuthenticator(config: DaemonConfig, io: CliIo, line: (level: LogLevel, msg: string, fields?: Record<string, unknown>) => string): Promise<ApiAuthenticator> {
  const a = config.auth;
  let tokensFile = a.tokensFile;
  if (a.insecureNoAuth) {
    io.err(line('warn', '--insecure-no-auth: the API accepts every request without authentication'));
  } else if (!tokensFile && !a.jwtSecret && !a.jwksFile) {
    const boot = await ensureBootstrapToken(config.dataDir);
    tokensFile = boot.file;
    if (boot.token) {
      io.err(line('warn', `created an admin API token: read it from ${boot.tokenFile} (mode 0600), keep it somewhere safe, then delete that file; only its hash is kept in ${boot.file}`, { tokenFile: boot.tokenFile }));
    } else if (existsSync(boot.tokenFile)) {
      io.err(line('warn', `the admin API token created at first start is still in ${boot.tokenFile}: delete that file once the token is kept elsewhere`, { tokenFile: boot.tokenFile }));
    }
  }
  return createAuthenticator({
    insecureNoAuth: a.insecureNoAuth,
    ...(tokensFile ? { tokensFile } : {}),
    ...(a.jwtSecret ? { jwtSecret: a.jwtSecret } : {}),
    ...(a.jwksFile ? { jwksFile: a.jwksFile } : {}),
    ...(a.issuer ? { issuer: a.issuer } : {}),
    ...(a.audience ? { audience: a.audience } : {}),
    onReloadError: (err: unknown) => io.err(line('error', `keeping the previous API credentials: ${err instanceof Error ? err.message : String(err)}`)),
  });
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
