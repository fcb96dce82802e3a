import { parseArgs } from 'node:util';
import { TenantdError } from '../core/errors.js';

/**
 * One argument parser for every subcommand: Node's `util.parseArgs` in strict mode, so an unknown
 * flag is an error naming it — never read as a file name — and `--help`/`-h` always answer.
 */
export interface FlagSpec {
  type: 'string' | 'boolean';
  help: string;
  /** Allowed values of a string flag (checked here, listed in the help). */
  values?: readonly string[];
  /** The environment variable that also sets it (shown in the help; read by the command). */
  env?: string;
  short?: string;
}

export interface CommandSpec {
  /** `validate`, `token create`, … */
  name: string;
  /** What follows the command name in the usage line: `[flags] <paths…>`. */
  synopsis: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  /** Positional arguments allowed: none when absent. */
  positionals?: { min: number; max: number; name: string };
  /** Lines added at the end of the help (examples, exit codes). */
  notes?: string;
}

export type FlagValues = Record<string, string | boolean | undefined>;
export type ParsedCommand = { help: true } | { help: false; values: FlagValues; positionals: string[] };

export const usageLine = (spec: CommandSpec): string => `Usage: tenantd ${spec.name} ${spec.synopsis}`.trimEnd();

export function helpText(spec: CommandSpec): string {
  const rows = Object.entries(spec.flags).map(([flag, f]) => {
    const left = `${f.short ? `-${f.short}, ` : ''}--${flag}${f.type === 'string' ? ` <${f.values ? f.values.join('|') : 'value'}>` : ''}`;
    return { left, env: f.env ?? '', help: f.help };
  });
  rows.push({ left: '-h, --help', env: '', help: 'show this help' });
  const width = Math.max(...rows.map((r) => r.left.length));
  const envWidth = Math.max(0, ...rows.map((r) => r.env.length));
  const lines = rows.map((r) => `  ${r.left.padEnd(width)}  ${envWidth ? `${r.env.padEnd(envWidth)}  ` : ''}${r.help}`.trimEnd());
  const envNote = envWidth ? 'Every flag with a variable name can also be set by that environment variable (the flag wins).\n' : '';
  return `${usageLine(spec)}\n\n${spec.summary}\n\nFlags:\n${lines.join('\n')}\n${envNote}${spec.notes ? `\n${spec.notes.trimEnd()}\n` : ''}`;
}

/** A usage error: exit code 2, the message and the usage line on stderr. */
export function usageError(spec: CommandSpec, message: string, data: Record<string, unknown> = {}): TenantdError {
  return new TenantdError('E_USAGE', 'stalled', `tenantd ${spec.name}: ${message}\n${usageLine(spec)}\nRun "tenantd ${spec.name} --help" for the flags.`, data);
}

const HELP = ['--help', '-h'];

export function parseCommand(spec: CommandSpec, argv: readonly string[]): ParsedCommand {
  const options = Object.fromEntries(
    Object.entries(spec.flags).map(([flag, f]) => [flag, { type: f.type, ...(f.short ? { short: f.short } : {}) }]),
  );
  let parsed: { values: FlagValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: spec.positionals !== undefined });
  } catch (err: unknown) {
    // `--help` wins over a mistake elsewhere on the line, as a person asking for help expects.
    const end = argv.indexOf('--');
    if ((end === -1 ? argv : argv.slice(0, end)).some((a) => HELP.includes(a))) return { help: true };
    throw usageError(spec, describeParseError(err, spec), { argv: [...argv] });
  }
  if (parsed.values['help'] === true) return { help: true };
  const { help: _help, ...values } = parsed.values;
  for (const [flag, f] of Object.entries(spec.flags)) {
    const v = values[flag];
    if (f.values && typeof v === 'string' && !f.values.includes(v)) {
      throw usageError(spec, `--${flag} must be one of ${f.values.join(', ')} (got ${JSON.stringify(v)})`, { flag });
    }
  }
  const p = spec.positionals;
  if (p && parsed.positionals.length < p.min) throw usageError(spec, `missing ${p.name}`);
  if (p && parsed.positionals.length > p.max) throw usageError(spec, `unexpected argument ${JSON.stringify(parsed.positionals[p.max])}`);
  return { help: false, values, positionals: parsed.positionals };
}

function describeParseError(err: unknown, spec: CommandSpec): string {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${quoted ?? message}${spec.positionals ? ` (a ${spec.positionals.name} that starts with "-" goes after "--")` : ''}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted ?? message)}: this command takes flags only`;
    default:
      // ERR_PARSE_ARGS_INVALID_OPTION_VALUE: Node's message names the flag and what is wrong.
      return message.split('\n').join(' ');
  }
}

export const stringFlag = (values: FlagValues, flag: string): string | undefined => {
  const v = values[flag];
  return typeof v === 'string' ? v : undefined;
};
