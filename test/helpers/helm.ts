/**
 * The chart (deploy/helm/tenantd) as helm renders it: the pinned helm binary of
 * test/helm-render/install.sh, `helm template` / `helm lint` with values given as --set-json,
 * and the rendered objects parsed.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART = path.join(ROOT, 'deploy', 'helm', 'tenantd');
export const MANIFESTS = path.join(ROOT, 'deploy', 'manifests', 'tenantd.yaml');

export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Every value set: what a production install looks like. */
export const FULL = {
  'config.repo': 'https://git.example.com/platform/tenants.git',
  'git.existingSecret': 'tenantd-git',
  'webhook.existingSecret': 'tenantd-webhook',
  'apiTokens.existingSecret': 'tenantd-api-tokens',
  'notifications.existingSecret': 'tenantd-notifications',
  'jwt.existingSecret': 'tenantd-jwt',
  'ingress.enabled': true,
  'ingress.className': 'nginx',
  'ingress.tls': [{ secretName: 'tenantd-tls', hosts: ['tenantd.example.com'] }],
  'serviceMonitor.enabled': true,
  'serviceMonitor.labels': { release: 'prometheus' },
};

let binary: Promise<string> | undefined;

/** The pinned helm (installed into ~/.cache on first use; several minutes on a slow machine). */
export function helmBinary(): Promise<string> {
  binary ??= run('bash', [path.join(ROOT, 'test', 'helm-render', 'install.sh')], { timeout: 600_000 }).then(({ stdout }) => stdout.trim());
  return binary;
}

/** Runs helm; rejects with its stderr in the message when it exits non-zero. */
export async function helm(args: string[]): Promise<string> {
  try {
    return (await run(await helmBinary(), args, { cwd: ROOT, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 })).stdout;
  } catch (err: unknown) {
    const e = err as { stderr?: string; message?: string };
    throw new Error(`helm ${args.join(' ')}: ${e.stderr || e.message || String(err)}`);
  }
}

/** `--set-json key=value` pairs for values. */
const setJson = (values: Record<string, unknown>): string[] => Object.entries(values).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]);

/** `helm template` of the chart as release `release` in `namespace`, with `values` set. */
export function helmTemplate(values: Record<string, unknown> = {}, release = 'tenantd', namespace = 'tenantd'): Promise<string> {
  return helm(['template', release, CHART, '--namespace', namespace, ...setJson(values)]);
}

/** The NOTES helm prints after an install (a client-side dry run: no cluster is contacted). */
export async function helmNotes(values: Record<string, unknown> = {}): Promise<string> {
  const out = await helm(['install', 'tenantd', CHART, '--namespace', 'tenantd', '--dry-run=client', '--kubeconfig', '/dev/null', ...setJson(values)]);
  const at = out.indexOf('\nNOTES:\n');
  if (at < 0) throw new Error('helm install --dry-run printed no NOTES');
  return out.slice(at + '\nNOTES:\n'.length);
}

export function helmLint(values: Record<string, unknown> = {}): Promise<string> {
  return helm(['lint', '--strict', CHART, ...setJson(values)]);
}

/** The objects of a multi-document YAML stream (empty documents dropped). */
export function parseObjects(text: string): RenderedObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors[0]?.message ?? ''}`);
      return doc.toJS() as RenderedObject | null;
    })
    .filter((o): o is RenderedObject => o !== null);
}

/** The one object of `kind` (and `name`, when given). */
export function only(objects: RenderedObject[], kind: string, name?: string): RenderedObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? `/${name}` : ''}, found ${found.length}`);
  return found[0] as RenderedObject;
}
