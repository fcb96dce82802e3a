import type { TenantEntity } from '../api/service.js';
import { sortKeysDeep } from '../core/canonical.js';
import { stringifyYaml } from '../core/status/yaml-emit.js';
import { stringFlag, type CommandSpec, type FlagSpec, type FlagValues } from './args.js';
import { ApiClient, clientOptionsFrom, DEFAULT_SERVER } from './api-client.js';

/**
 * The commands a person at a terminal runs against a running daemon's REST API (like `kubectl
 * get` and `flux suspend`): nothing here reads the repository or the data directory.
 */
const CONNECTION_FLAGS: Record<string, FlagSpec> = {
  server: { type: 'string', env: 'TENANTD_SERVER', help: `the daemon's API (default ${DEFAULT_SERVER})` },
  token: { type: 'string', env: 'TENANTD_TOKEN', help: 'an API token (see "tenantd token create")' },
  'token-file': { type: 'string', env: 'TENANTD_TOKEN_FILE', help: 'a file holding the token (e.g. .tenantd/admin-token)' },
};
const OUTPUT_FLAG: FlagSpec = { type: 'string', short: 'o', values: ['table', 'json', 'yaml'], help: 'output format (default table)' };
const EXIT_NOTES = 'Exit codes: 0 done, 1 other error, 2 usage error, 3 server unreachable, 4 token missing, refused or without the scope, 5 no such tenant.';

const remote = (name: string, synopsis: string, summary: string, positionals: CommandSpec['positionals'], output: boolean): CommandSpec => ({
  name,
  synopsis,
  summary,
  flags: { ...(output ? { output: OUTPUT_FLAG } : {}), ...CONNECTION_FLAGS },
  ...(positionals ? { positionals } : {}),
  notes: EXIT_NOTES,
});

export const REMOTE_COMMANDS: Record<string, CommandSpec> = {
  get: remote('get', '[tenant] [flags]', 'Show tenants (all of them, or one) as the daemon sees them.', { min: 0, max: 1, name: 'tenant id' }, true),
  status: remote('status', '[flags]', 'The daemon at a glance: readiness, tenants per status, a deletion hold, and the tenants that are not Ready.', undefined, true),
  reconcile: remote('reconcile', '<tenant> [flags]', 'Reconcile a tenant now, even if stalled or backing off (like "flux reconcile").', { min: 1, max: 1, name: 'tenant id' }, false),
  suspend: remote('suspend', '<tenant> [flags]', 'Pause reconciliation of a tenant: commits spec.suspend: true through the API.', { min: 1, max: 1, name: 'tenant id' }, false),
  resume: remote('resume', '<tenant> [flags]', 'Resume reconciliation of a suspended tenant: removes spec.suspend through the API.', { min: 1, max: 1, name: 'tenant id' }, false),
};

const T = '/api/v1/infrastructure/tenants';
type Format = 'table' | 'json' | 'yaml';
interface Io {
  env: NodeJS.ProcessEnv;
  cwd: string;
  out: (text: string) => void;
  now?: () => Date;
}

export async function runRemoteCommand(command: string, values: FlagValues, positionals: string[], io: Io): Promise<number> {
  const opts = await clientOptionsFrom(
    {
      ...(stringFlag(values, 'server') !== undefined ? { server: stringFlag(values, 'server') } : {}),
      ...(stringFlag(values, 'token') !== undefined ? { token: stringFlag(values, 'token') } : {}),
      ...(stringFlag(values, 'token-file') !== undefined ? { tokenFile: stringFlag(values, 'token-file') } : {}),
    },
    io.env,
    io.cwd,
  );
  const client = new ApiClient(opts);
  const format = (stringFlag(values, 'output') ?? 'table') as Format;
  const now = io.now?.() ?? new Date();
  const id = positionals[0];
  switch (command) {
    case 'get': {
      const items = id === undefined ? await listAll(client) : [(await client.request<TenantEntity>('GET', `${T}/${encodeURIComponent(id)}`)).body];
      io.out(format === 'table' ? (items.length ? tenantTable(items, now) : 'No tenants.\n') : render(id === undefined ? { items } : items[0], format));
      return 0;
    }
    case 'status': {
      const ready = await client.request<{ ready: boolean; problem?: { code: string; message: string } }>('GET', '/readyz', { accept: [503] });
      const page = await client.request<{ total: number; counts: Record<string, number> }>('GET', `${T}?limit=1`);
      const deletions = await client.request<{ hold: { tenants: string[]; reasons: string[] } | null }>('GET', '/api/v1/deletions');
      const notReady = (await listAll(client)).filter((e) => readyOf(e).status !== 'True' && e.status !== 'DEPROVISIONED');
      const summary = { server: client.server, ready: ready.body.ready, problem: ready.body.problem ?? null, total: page.body.total, counts: page.body.counts, deletionHold: deletions.body.hold, notReady };
      io.out(format === 'table' ? statusText(summary, now) : render({ ...summary, notReady: notReady.map((e) => e.tenantId) }, format));
      return 0;
    }
    case 'reconcile': {
      const res = await client.request<{ requestedAt: string }>('POST', `${T}/${encodeURIComponent(id as string)}/reconcile`);
      io.out(`► reconcile of ${id as string} requested (requestedAt ${res.body.requestedAt}); "tenantd get ${id as string}" shows when it is handled\n`);
      return 0;
    }
    case 'suspend':
    case 'resume': {
      const tid = id as string;
      const current = await client.request<TenantEntity>('GET', `${T}/${encodeURIComponent(tid)}`);
      const suspended = current.body.spec?.suspend === true;
      if (suspended === (command === 'suspend')) {
        io.out(`${tid} is already ${command === 'suspend' ? 'suspended' : 'not suspended'}: nothing to commit\n`);
        return 0;
      }
      const etag = current.headers.get('etag');
      // If-Match: a person's change never overwrites one made since the read above (412 instead).
      const res = await client.request<{ commit: string | null }>('PUT', `${T}/${encodeURIComponent(tid)}`, {
        body: { suspend: command === 'suspend' ? true : null },
        headers: { 'Content-Type': 'application/merge-patch+json', ...(etag ? { 'If-Match': etag } : {}) },
      });
      io.out(`► ${tid} ${command === 'suspend' ? 'suspended' : 'resumed'} (commit ${res.body.commit?.slice(0, 12) ?? '-'})\n`);
      return 0;
    }
    default:
      throw new Error(`no runner for the remote command ${command}`);
  }
}

/** Every page of the list, in the server's order (sorted by id). */
async function listAll(client: ApiClient): Promise<TenantEntity[]> {
  const items: TenantEntity[] = [];
  let next: string | null = `${T}?limit=500`;
  // Bounded: each page moves `after` forward; a fleet of a million tenants is 2,000 pages.
  for (let pages = 0; next !== null && pages < 10_000; pages++) {
    const page: { body: { items: TenantEntity[]; next: string | null } } = await client.request('GET', next);
    items.push(...page.body.items);
    next = page.body.next;
  }
  return items;
}

const render = (value: unknown, format: Exclude<Format, 'table'>): string =>
  format === 'json' ? `${JSON.stringify(sortKeysDeep(value), null, 2)}\n` : stringifyYaml(sortKeysDeep(value), { sortMapEntries: true });

const readyOf = (e: TenantEntity): { status: string; message: string } => {
  const c = e.conditions.find((x) => x.type === 'Ready');
  return { status: c?.status ?? 'Unknown', message: c?.message ?? (e.reconciled ? '' : 'not reconciled yet') };
};

/** Columns padded to their widest cell, two spaces apart, like kubectl and flux. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

function tenantTable(items: TenantEntity[], now: Date): string {
  return table(
    ['TENANT', 'STATUS', 'PHASE', 'READY', 'AGE', 'MESSAGE'],
    items.map((e) => {
      const ready = readyOf(e);
      return [e.tenantId, e.status, e.phase ?? '-', ready.status, age(e.createdAt, now), oneLine(ready.message)];
    }),
  );
}

function statusText(s: { server: string; ready: boolean; problem: { code: string; message: string } | null; total: number; counts: Record<string, number>; deletionHold: { tenants: string[]; reasons: string[] } | null; notReady: TenantEntity[] }, now: Date): string {
  const counts = Object.entries(s.counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const lines = [
    `Server:     ${s.server}`,
    `Ready:      ${s.ready ? 'yes' : `no${s.problem ? ` (${s.problem.code}: ${s.problem.message})` : ''}`}`,
    `Tenants:    ${s.total}${counts ? ` (${counts})` : ''}`,
    `Deletions:  ${s.deletionHold ? `${s.deletionHold.tenants.length} held (${s.deletionHold.reasons.join(', ')}): see GET /api/v1/deletions` : 'none held'}`,
  ];
  const rest = s.notReady.length ? `\nNot Ready (${s.notReady.length}):\n${tenantTable(s.notReady, now)}` : '\nEvery tenant is Ready.\n';
  return `${lines.join('\n')}\n${rest}`;
}

const oneLine = (s: string): string => {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > 100 ? `${flat.slice(0, 99)}…` : flat;
};

/** kubectl's short ages: 45s, 12m, 5h, 3d. */
export function age(iso: string | null, now: Date): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.floor((now.getTime() - Date.parse(iso)) / 1000));
  if (Number.isNaN(s)) return '-';
  if (s < 120) return `${s}s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 2 * 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
