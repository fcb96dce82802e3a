#!/usr/bin/env node
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiAuthenticator } from '../api/app.js';
import { createAuthenticator, ensureBootstrapToken } from '../api/auth/index.js';
import { isTenantdError, TenantdError } from '../core/errors.js';
import type { LogLevel } from '../core/events/publisher.js';
import { startApiServer, type ApiServer } from './api-server.js';
import packageJson from '../package.json' with { type: 'json' };
import { helpText, parseCommand, stringFlag, type CommandSpec, type FlagValues } from './args.js';
import { defaultFormat, locationRoot, type OutputFormat } from './ci-output.js';
import { DAEMON_COMMAND, daemonConfigFrom, type DaemonConfig } from './config.js';
import { TenantdDaemon } from './daemon.js';
import { openReplica } from './replica.js';
import { applyHeapPolicy } from './heap-policy.js';
import { displayRepo, logLine } from './log-line.js';
import { initTenantsRepo } from './init-repo.js';
import { loadNotificationsConfig } from './notifications-config.js';
import { ALERT_LEDGER_FILE, AlertLedger } from './alert-ledger.js';
import { startAlerting } from './notifier.js';
import { isFenced } from './write-fence.js';
import { exitCodeForRemote } from './api-client.js';
import { REMOTE_COMMANDS, runRemoteCommand } from './remote-commands.js';
import { formatPlan, PLAN_COMMAND, planArgsFrom, planCommand } from './plan-command.js';
import { TOKEN_COMMAND, tokenCommand } from './token-command.js';
import { formatValidation, VALIDATE_COMMAND, validatePaths } from './validate-command.js';

export interface CliIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal: Promise<string>;
}

const INIT_COMMAND: CommandSpec = {
  name: 'init',
  synopsis: '<dir>',
  summary: 'Create a tenants repository (branch main) with the example tenants.',
  flags: {},
  positionals: { min: 1, max: 1, name: 'directory' },
};

const COMMANDS: Record<string, CommandSpec> = { daemon: DAEMON_COMMAND, validate: VALIDATE_COMMAND, plan: PLAN_COMMAND, init: INIT_COMMAND, token: TOKEN_COMMAND, ...REMOTE_COMMANDS };

const USAGE = `Usage: tenantd <command> [flags]

Commands:
  daemon             watch the tenants repository and reconcile
  validate [paths…]  check tenant files; file:line:column errors, exit 1 if any is invalid
  plan               what would change per tenant between two revisions, or against the status
  init <dir>         create a tenants repository (branch main) with the example tenants
  token <action>     create, list or revoke named API tokens

Talking to a running daemon (--server/TENANTD_SERVER, --token/TENANTD_TOKEN or --token-file):
  get [tenant]       tenants as a table (-o json|yaml)
  status             readiness, tenants per status, deletion hold, tenants not Ready
  reconcile <tenant> reconcile now, even if stalled or backing off
  suspend <tenant>   pause reconciliation (commits spec.suspend: true)
  resume <tenant>    resume it

Run "tenantd <command> --help" for a command's flags; "tenantd --version" for the version.
`;

const isUsageError = (err: unknown): err is TenantdError => isTenantdError(err) && (err.code === 'E_USAGE' || err.code === 'E_CONFIG');

/** Runs one command; returns the process exit code (2 for a usage error). */
export async function runCli(io: CliIo): Promise<number> {
  const [command, ...rest] = io.argv;
  try {
    return await dispatch(command, rest, io);
  } catch (err: unknown) {
    if (isUsageError(err)) {
      // A usage message names its command itself ("tenantd validate: unknown flag --x").
      io.err(err.code === 'E_USAGE' ? `${err.message}\n` : `tenantd: ${err.code}: ${err.message}\n`);
      // With --detailed-exitcode, 2 means "changes": a mistyped flag must not read as that.
      return command === 'plan' && rest.includes('--detailed-exitcode') ? 1 : 2;
    }
    if (isTenantdError(err)) {
      io.err(`tenantd: ${err.code}: ${err.message}\n`);
      return exitCodeForRemote(err.code) ?? 1;
    }
    io.err(`tenantd: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

async function dispatch(command: string | undefined, rest: string[], io: CliIo): Promise<number> {
  // `token` has actions, each with its own flags: it parses its arguments itself.
  if (command === 'token') {
    io.out(await tokenCommand(rest, io.cwd, io.env));
    return 0;
  }
  if (command !== undefined && Object.hasOwn(COMMANDS, command)) {
    const spec = COMMANDS[command] as CommandSpec;
    const parsed = parseCommand(spec, rest);
    if (parsed.help) {
      io.out(helpText(spec));
      return 0;
    }
    return runCommand(command, parsed.values, parsed.positionals, io);
  }
  switch (command) {
    case '--version':
    case '-V':
      io.out(`tenantd ${packageJson.version}\n`);
      return 0;
    case 'help':
    case '--help':
    case '-h': {
      const topic = rest[0] !== undefined && Object.hasOwn(COMMANDS, rest[0]) ? COMMANDS[rest[0]] : undefined;
      io.out(topic ? helpText(topic) : USAGE);
      return 0;
    }
    case undefined:
      io.err(USAGE);
      return 2;
    default:
      io.err(`tenantd: unknown ${command.startsWith('-') ? 'flag' : 'command'} ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

async function runCommand(command: string, values: FlagValues, positionals: string[], io: CliIo): Promise<number> {
  const root = locationRoot(io.env, io.cwd);
  const version = packageJson.version;
  switch (command) {
    case 'daemon':
      return daemonCommand(daemonConfigFrom(values, io.env, io.cwd), io);
    case 'validate': {
      const format = (stringFlag(values, 'format') as OutputFormat | undefined) ?? defaultFormat(io.env);
      const report = await validatePaths(positionals, io.cwd);
      // Machine formats always go to stdout (redirected to a file, uploaded); text errors to stderr.
      (format === 'text' && report.issues.length ? io.err : io.out)(formatValidation(report, format, { cwd: io.cwd, root, version }));
      return report.issues.length ? 1 : 0;
    }
    case 'plan': {
      const args = planArgsFrom(values, io.env, io.cwd);
      const plan = await planCommand(args);
      io.out(formatPlan(plan, args.format, { repo: args.repo, root, version }));
      if (plan.invalid > 0) return 1;
      return args.detailedExitCode && plan.changed > 0 ? 2 : 0;
    }
    case 'init': {
      const dir = path.resolve(io.cwd, positionals[0] as string);
      const commit = await initTenantsRepo(dir);
      io.out(`Initialized a tenants repository in ${dir} (branch main, commit ${commit.slice(0, 12)})\n`);
      return 0;
    }
    default:
      if (Object.hasOwn(REMOTE_COMMANDS, command)) return runRemoteCommand(command, values, positionals, io);
      throw new TenantdError('E_INTERNAL', 'stalled', `no runner for the command ${command}`);
  }
}

async function daemonCommand(config: DaemonConfig, io: CliIo): Promise<number> {
  applyHeapPolicy(io.env);
  const line = (level: LogLevel, msg: string, fields?: Record<string, unknown>): string => logLine(config.logFormat, level, msg, fields);
  // Read before anything opens: a bad file is a configuration error (exit 2), not a silent start without alerts.
  const notifications = config.notificationsFile ? await loadNotificationsConfig(config.notificationsFile, io.env) : null;
  const replica = config.leaderElection ? await openReplica(config, config.leaderElection, (level, msg, fields) => io.out(line(level, msg, fields))) : null;
  const daemon = await TenantdDaemon.open(config, { write: io.out, ...(replica ? { election: replica.deps } : {}) });
  const alerting = notifications
    ? startAlerting(
        notifications,
        daemon,
        {
          onDeliveryFailed: (f) => io.out(line('warn', `alert ${f.alert} for ${f.tenantId ?? 'the fleet'} not delivered to receiver ${f.receiver} after ${f.attempts} attempt(s): ${f.error}`, { receiver: f.receiver, alert: f.alert, tenantId: f.tenantId, attempts: f.attempts, error: f.error })),
        },
        new AlertLedger({
          file: path.join(config.dataDir, ALERT_LEDGER_FILE),
          ...(replica ? { fence: replica.deps.fence } : {}),
          // A replica that lost the Lease leaves the ledger to the next leader, which reads it anew.
          onError: (err) => {
            if (!isFenced(err)) io.out(line('warn', `alert ledger: ${err instanceof Error ? err.message : String(err)}`, { code: 'E_ALERT_LEDGER' }));
          },
        }),
      )
    : null;
  if (notifications) io.out(line('info', `alerts to ${notifications.receivers.map((r) => `${r.name} (${r.format})`).join(', ')}`));
  const repo = config.repo ?? path.join(config.dataDir, 'tenants');
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
      events: { maxStreamsPerPrincipal: config.sseMaxStreams },
      ...(replica ? { replica: { identity: replica.identity, leader: () => replica.leader() } } : {}),
      logError: (requestId, err) => io.err(`${JSON.stringify({ level: 'error', msg: 'API request failed', requestId, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })}\n`),
    });
  } catch (err: unknown) {
    await daemon.stop();
    await alerting?.stop();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new TenantdError('E_CONFIG', 'stalled', `--port (PORT) = ${config.port}: the port is already in use on ${config.host}`, { field: 'port' });
    }
    throw err;
  }
  io.out(line('info', `API on ${api.url} (webhooks ${config.webhookSecrets.length ? 'on' : 'off: set --webhook-secret'})`, { url: api.url }));
  if (replica) {
    // A standby until the Lease says otherwise: reads served, writes forwarded to the leader.
    await daemon.startStandby();
    replica.run(daemon);
  } else {
    await daemon.start();
  }
  const signal = await io.stopSignal;
  io.out(line('info', `${signal} received, finishing the current checkpoint`));
  await api.close();
  await daemon.stop();
  // Alerts raised by the last checkpoint still go out, within a bound.
  const abandoned = (await alerting?.stop()) ?? 0;
  if (abandoned > 0) io.out(line('warn', `${abandoned} alert(s) not delivered before stopping`));
  // Given up only now, so no other replica writes while this one finishes its checkpoint.
  await replica?.stop();
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
    ...(a.allowNoExp ? { allowNoExp: true } : {}),
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
