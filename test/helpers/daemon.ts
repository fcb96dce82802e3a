import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDaemonConfig } from '../../daemon/config.js';
import { TenantdDaemon, type DaemonDeps } from '../../daemon/daemon.js';
import { findExampleDir } from '../../daemon/init-repo.js';
import { gitOut } from './git-fixtures.js';

/** The example tenants as `{ 'tenants/x.yaml': text }`, for seeding test repositories. */
export async function exampleFiles(): Promise<Record<string, string>> {
  const dir = path.join(findExampleDir(), 'tenants');
  const files: Record<string, string> = {};
  for (const name of (await fsp.readdir(dir)).sort()) files[`tenants/${name}`] = await fsp.readFile(path.join(dir, name), 'utf8');
  return files;
}

/** An in-process daemon on `repo` with polling off (tests call `poll()`), quiet output. */
export async function openDaemon(repo: string, dataDir: string, flags: string[] = [], deps: DaemonDeps = {}): Promise<{ daemon: TenantdDaemon; lines: string[] }> {
  const lines: string[] = [];
  const config = parseDaemonConfig(['--repo', repo, '--data-dir', dataDir, '--poll', '0', '--log-format', 'json', ...flags], {}, '/');
  const daemon = await TenantdDaemon.open(config, { write: (l) => void lines.push(l), ...deps });
  return { daemon, lines };
}

/** A status file as committed on `ref` (native git reads it: what a user would see). */
export async function statusAt(repo: string, ref: string, tenantId: string): Promise<Record<string, unknown> & { status: Record<string, unknown> }> {
  return parseYaml(await gitOut(repo, ['show', `${ref}:status/${tenantId}.yaml`])) as Record<string, unknown> & { status: Record<string, unknown> };
}
