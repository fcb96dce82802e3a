/**
 * The kubernetes provider on a real control plane (test/cluster/up.sh: kube-apiserver, etcd and
 * kube-controller-manager 1.20.2) against `kubectl apply --server-side` of the same rendered
 * manifests (Debian's kubernetes-client of the same release), in the same run.
 *
 * For N tenants each side creates its own copy of the fleet (same objects, other tenant ids), then
 * applies it again unchanged (the converged re-pass). tenantd runs Apply, Deploy and Configure per
 * tenant, `concurrency` tenants at a time, as the daemon does; kubectl runs `concurrency` processes,
 * each applying one share of the manifests. API requests are counted per user in the API server's
 * own audit log (tenantd and kubectl get tokens of their own), so nothing sits between client and
 * server while the clock runs.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { parseTenantFile } from '../../core/tenant/validate.js';
import type { TenantInfrastructureDocument } from '../../core/tenant/types.js';
import { KubeClient } from '../../providers/kubernetes/client.js';
import { createKubernetesProvider } from '../../providers/kubernetes/provider.js';
import { ServedVersions } from '../../providers/kubernetes/served-versions.js';
import type { InfrastructureProvider, ProviderContext } from '../../providers/provider.js';
import { allObjects, renderTenant } from '../../providers/resources/renderer.js';
import { figure, row, type Row } from '../lib/report.js';
import { tenantYaml } from '../lib/tenants.js';

const run = promisify(execFile);

export interface KubeApplyOptions {
  /** The project root (test/cluster/ lives there). */
  root: string;
  /** A scratch directory for the control plane and manifests. */
  work: string;
  sizes: number[];
  concurrency: number;
  progress: (message: string) => void;
}

interface Pass {
  seconds: number;
  requests: number;
}

const USERS = ['tenantd-bench', 'kubectl-bench'] as const;
type User = (typeof USERS)[number];

/** Runs `items` through `work`, `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(workers);
}

/** Completed requests per user in the audit log so far. */
async function auditCounts(file: string): Promise<Record<User, number>> {
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  const counts: Record<User, number> = { 'tenantd-bench': 0, 'kubectl-bench': 0 };
  for (const line of text.split('\n')) {
    if (!line.includes('"ResponseComplete"')) continue;
    for (const u of USERS) if (line.includes(`"username":"${u}"`)) counts[u]++;
  }
  return counts;
}

function kubeconfigFor(server: string, user: User, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'bench', server, skipTLSVerify: true }],
    users: [{ name: user, token }],
    contexts: [{ name: 'bench', cluster: 'bench', user }],
    currentContext: 'bench',
  });
  return kc;
}

/** The documents of N tenants under `prefix` (validated like the daemon reads them). */
function fleet(n: number, prefix: string): TenantInfrastructureDocument[] {
  const docs: TenantInfrastructureDocument[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${String(i).padStart(5, '0')}`;
    const parsed = parseTenantFile(`tenants/${id}.yaml`, tenantYaml(i, 0, prefix));
    if (!parsed.ok) throw new Error(`bench tenant ${id} is invalid: ${JSON.stringify(parsed.issues[0])}`);
    docs.push(parsed.tenant);
  }
  return docs;
}

async function tenantdPass(provider: InfrastructureProvider, docs: readonly TenantInfrastructureDocument[], concurrency: number): Promise<number> {
  const started = performance.now();
  await pool(docs, concurrency, async (doc) => {
    const ctx: ProviderContext = {
      tenantId: doc.metadata.tenantId,
      tenant: doc,
      desired: renderTenant(doc),
      operationId: 'bench',
      signal: new AbortController().signal,
      progress: () => undefined,
    };
    await provider.apply(ctx);
    await provider.deploy(ctx);
    await provider.configure(ctx);
  });
  return (performance.now() - started) / 1000;
}

async function kubectlPass(kubectl: string, kubeconfig: string, files: readonly string[], cacheDir: string): Promise<number> {
  const started = performance.now();
  await Promise.all(
    files.map(
      (file) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(kubectl, ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, 'apply', '--server-side', '--field-manager', 'kubectl-bench', '-f', file], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let err = '';
          child.stderr.on('data', (d: Buffer) => (err += d.toString()));
          child.on('error', reject);
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`kubectl apply -f ${file} exited ${code}: ${err.slice(-2000)}`))));
        }),
    ),
  );
  return (performance.now() - started) / 1000;
}

export async function kubeApply(o: KubeApplyOptions): Promise<Row[]> {
  const scripts = path.join(o.root, 'test', 'cluster');
  o.progress('kubernetes: building (or reusing) the control plane from Debian’s kubernetes source…');
  const bin = (await run('bash', [path.join(scripts, 'build.sh')], { maxBuffer: 64 << 20, timeout: 3_600_000 })).stdout.trim();
  const kubectl = path.join(bin, 'kubectl');
  const dir = path.join(o.work, 'cluster');
  await fsp.mkdir(dir, { recursive: true });
  const tokens: Record<string, string> = { admin: randomBytes(24).toString('hex'), nobody: randomBytes(24).toString('hex') };
  for (const u of USERS) tokens[u] = randomBytes(24).toString('hex');
  await fsp.writeFile(
    path.join(dir, 'tokens.csv'),
    `${tokens.admin},admin,admin,system:masters\n${tokens.nobody},nobody,nobody\n${USERS.map((u) => `${tokens[u]},${u},${u},system:masters`).join('\n')}\n`,
    { mode: 0o600 },
  );
  const audit = path.join(dir, 'audit.log');
  const policy = path.join(dir, 'audit-policy.yaml');
  await fsp.writeFile(
    policy,
    ['apiVersion: audit.k8s.io/v1', 'kind: Policy', 'omitStages: [RequestReceived]', 'rules:', `  - level: Metadata`, `    users: [${USERS.join(', ')}]`, '  - level: None', ''].join('\n'),
  );
  await run('bash', [path.join(scripts, 'up.sh'), dir], {
    env: { ...process.env, TENANTD_KUBE_APISERVER_ARGS: `--audit-log-path ${audit} --audit-policy-file ${policy} --audit-log-format json --audit-log-maxsize 0` },
    timeout: 300_000,
  });
  const rows: Row[] = [];
  try {
    const server = (await fsp.readFile(path.join(dir, 'kubeconfig'), 'utf8')).match(/server: (\S+)/)?.[1] ?? '';
    const tdConfig = kubeconfigFor(server, 'tenantd-bench', tokens['tenantd-bench'] as string);
    const kcFile = path.join(dir, 'kubectl-bench.kubeconfig');
    await fsp.writeFile(kcFile, kubeconfigFor(server, 'kubectl-bench', tokens['kubectl-bench'] as string).exportConfig(), { mode: 0o600 });

    for (const n of o.sizes) {
      const tag = randomBytes(2).toString('hex');
      const ours = fleet(n, `td${tag}`);
      const theirs = fleet(n, `kc${tag}`);
      const objects = ours.reduce((sum, d) => sum + allObjects(renderTenant(d)).length, 0);
      // kubectl's manifests: the same rendered objects in the versions this cluster serves (as
      // tenantd sends them), one share per process, each tenant's namespace first.
      const served = new ServedVersions(new KubeClient('bench', tdConfig), () => new Date());
      const shares: string[][] = Array.from({ length: o.concurrency }, () => []);
      for (const [i, doc] of theirs.entries()) {
        const rendered = await served.adapt(renderTenant(doc), AbortSignal.timeout(30_000));
        shares[i % o.concurrency]?.push(...allObjects(rendered).map((obj) => JSON.stringify(obj)));
      }
      const files: string[] = [];
      for (const [k, share] of shares.entries()) {
        if (share.length === 0) continue;
        const file = path.join(o.work, `manifests-${n}-${k}.yaml`);
        await fsp.writeFile(file, share.map((d) => `---\n${d}\n`).join(''));
        files.push(file);
      }
      const provider = createKubernetesProvider({ kubeConfig: tdConfig, pollIntervalMs: 1000 });
      const cache = path.join(o.work, `kubectl-cache-${n}`);
      const measure = async (user: User, pass: () => Promise<number>): Promise<Pass> => {
        const before = (await auditCounts(audit))[user];
        const seconds = await pass();
        // The audit log is written after the responses: count once two reads 500 ms apart agree
        // (bounded: 20 reads), not after a fixed wait a loaded machine may outlast.
        let after = -1;
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 500));
          const now = (await auditCounts(audit))[user];
          if (now === after) break;
          after = now;
        }
        return { seconds, requests: after - before };
      };
      o.progress(`kubernetes: ${n} tenants (${objects} objects): tenantd create…`);
      const tdCreate = await measure('tenantd-bench', () => tenantdPass(provider, ours, o.concurrency));
      o.progress(`kubernetes: ${n} tenants: kubectl create…`);
      const kcCreate = await measure('kubectl-bench', () => kubectlPass(kubectl, kcFile, files, cache));
      o.progress(`kubernetes: ${n} tenants: tenantd converged re-pass…`);
      const tdAgain = await measure('tenantd-bench', () => tenantdPass(provider, ours, o.concurrency));
      o.progress(`kubernetes: ${n} tenants: kubectl converged re-pass…`);
      const kcAgain = await measure('kubectl-bench', () => kubectlPass(kubectl, kcFile, files, cache));
      await provider.close?.();
      const perTenant = (p: Pass): string => (p.requests / n).toFixed(1);
      const perObject = (p: Pass): number => p.requests / objects;
      for (const [label, td, kc] of [
        ['create', tdCreate, kcCreate],
        ['converged re-pass', tdAgain, kcAgain],
      ] as const) {
        const ratio = td.seconds / kc.seconds;
        rows.push(
          row({
            scenario: `kubernetes apply: ${label}`,
            tenants: n,
            unit: 's',
            tenantd: figure([td.seconds]),
            native: { ...figure([kc.seconds]), command: 'kubectl apply --server-side' },
            target: '≤ 1.5× kubectl',
            met: ratio <= 1.5,
            check: `${objects} objects; API requests per tenant: tenantd ${perTenant(td)}, kubectl ${perTenant(kc)} (per object ${perObject(td).toFixed(2)} vs ${perObject(kc).toFixed(2)}); concurrency ${o.concurrency}`,
          }),
        );
      }
      rows.push(
        row({
          scenario: 'kubernetes apply: re-pass requests per object',
          tenants: n,
          unit: 'req/object',
          tenantd: figure([perObject(tdAgain)]),
          native: { ...figure([perObject(kcAgain)]), command: 'kubectl apply --server-side' },
          target: '≤ 2 requests per object',
          met: perObject(tdAgain) <= 2,
          check: 'from the API server’s audit log: a server-side apply per object (the inventory’s fingerprints of the last apply stand in for a read), plus each tenant’s namespace and inventory reads',
        }),
      );
    }
  } finally {
    await run('bash', [path.join(scripts, 'down.sh'), dir]).catch(() => undefined);
  }
  return rows;
}

/** Whether the control-plane scripts are there (they are in a checkout, not in an installed package). */
export const kubeScriptsPresent = (root: string): boolean => existsSync(path.join(root, 'test', 'cluster', 'up.sh'));
