/**
 * The `render` provider: the embedded default. It needs no cluster; it renders each tenant's
 * Kubernetes objects to YAML files under `<dataDir>/rendered/<tenantId>/` (layout in `layout.ts`),
 * one directory per apply group, so `kubectl apply -f` (or a GitOps tool) can take them from there.
 *
 * - Each phase writes only its group (apply → Apply, deploy → Deploy, configure → Configure) and
 *   prunes files of that group that are no longer rendered.
 * - Writes are atomic (temp file, fsync, rename) and idempotent: identical content is not rewritten,
 *   so re-running a phase after a crash changes nothing more. A group's files are written as a
 *   batch (see `writeFiles`): every temp file is written and fsync'd, then all are renamed, then the
 *   directory is fsync'd once — the same guarantee as file-by-file, with one directory fsync per
 *   group instead of one per file, and the files' fsyncs in flight together.
 * - Work is not repeated within an operation: a tenant's manifests are serialized once per
 *   rendering (plan, the three phases and verify share it), and a file on disk is parsed only when
 *   its bytes differ from the desired ones (identical bytes are the identical object).
 * - Generated secrets are created once with `randomBytes` and kept in
 *   `<dataDir>/secrets/<tenantId>/<name>.json` (0600, directory 0700). The rendered Secret manifest
 *   references that file by annotation and never holds a value; no result, progress message or
 *   error carries one either.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import nodeFs from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson, sortKeysDeep } from '../../core/canonical.js';
import { retryable, stalled } from '../../core/errors.js';
import type { DriftReport, InfrastructureProvider, PhaseResult, PlanResult, ProviderContext, ResourceChange } from '../provider.js';
import { diffPaths } from '../resources/diff.js';
import { APPLY_GROUPS, objectRef, outputsFor, refKey } from '../resources/renderer.js';
import type { ApplyGroup, GeneratedSecret, KubeObject, KubeObjectRef, RenderedTenant } from '../resources/types.js';
import {
  fileNameFor,
  GROUP_DIRS,
  isManifestFile,
  parseManifestYaml,
  renderedTenantDir,
  SECRETS_DIR,
  secretFileName,
  secretRelPath,
  secretsTenantDir,
  toManifestYaml,
} from './layout.js';
import { checkedTenantId } from '../tenant-guard.js';

type Fs = typeof import('node:fs/promises');

export interface RenderProviderOptions {
  dataDir: string;
  fs?: Fs;
  randomBytes?: (n: number) => Buffer;
}

/** On a rendered Secret manifest: where the render provider keeps its values (relative to dataDir). */
export const ANNOTATION_SECRET_FILE = 'tenantd.io/secret-file';
/** Bytes of randomness per generated value (32 base64url characters). */
export const GENERATED_SECRET_BYTES = 24;

const SECRET_FILE_MODE = 0o600;
const SECRET_DIR_MODE = 0o700;
/** Object names become file names: allow only DNS-1123 subdomains, so nothing escapes its directory. */
const SAFE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

interface DesiredFile {
  group: ApplyGroup;
  /** `<group dir>/<file>` relative to the tenant's rendered directory. */
  rel: string;
  ref: KubeObjectRef;
  obj: KubeObject;
  text: string;
}

interface WrittenFile {
  group: ApplyGroup;
  rel: string;
  text: string;
  /** null when the file no longer parses as a Kubernetes object (parsed on first use). */
  readonly obj: KubeObject | null;
}

/** A manifest read from disk; its YAML is parsed only if something asks for the object. */
function writtenFile(group: ApplyGroup, rel: string, text: string): WrittenFile {
  let parsed: KubeObject | null | undefined;
  return {
    group,
    rel,
    text,
    get obj(): KubeObject | null {
      if (parsed === undefined) {
        try {
          const value = parseManifestYaml(text);
          parsed = isKubeObject(value) ? value : null;
        } catch {
          parsed = null;
        }
      }
      return parsed;
    },
  };
}

interface Comparison {
  changes: ResourceChange[];
  /** Desired files whose content on disk differs (missing, edited, unparsable). */
  toWrite: DesiredFile[];
  /** Written files that are not desired. */
  toDelete: WrittenFile[];
}

const errnoCode = (err: unknown): string | undefined =>
  err !== null && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;

function isKubeObject(value: unknown): value is KubeObject {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  const meta = v.metadata as Record<string, unknown> | undefined;
  return typeof v.apiVersion === 'string' && typeof v.kind === 'string' && meta !== null && typeof meta === 'object' && typeof meta.name === 'string';
}

function listNames(refs: readonly string[], max = 10): string {
  return refs.length <= max ? refs.join(', ') : `${refs.slice(0, max).join(', ')} and ${refs.length - max} more`;
}

export function createRenderProvider(opts: RenderProviderOptions): InfrastructureProvider {
  const fs: Fs = opts.fs ?? nodeFs;
  const randomBytes = opts.randomBytes ?? nodeRandomBytes;
  const dataDir = opts.dataDir;

  // --- guards -------------------------------------------------------------------------------

  const tenantIdOf = checkedTenantId;

  function checkAbort(ctx: ProviderContext): void {
    if (ctx.signal.aborted) {
      throw retryable('E_ABORTED', `operation for tenant ${ctx.tenantId} was aborted`, { tenantId: ctx.tenantId }, ctx.signal.reason);
    }
  }

  function checkName(tenantId: string, name: string): void {
    if (!SAFE_NAME.test(name)) throw stalled('E_INVALID_NAME', `object name ${JSON.stringify(name)} cannot be rendered to a file`, { tenantId, name });
  }

  // --- file primitives ----------------------------------------------------------------------

  async function readText(file: string): Promise<string | null> {
    try {
      return await fs.readFile(file, 'utf8');
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    }
  }

  async function exists(p: string): Promise<boolean> {
    try {
      await fs.stat(p);
      return true;
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  async function readDirNames(dir: string): Promise<string[]> {
    try {
      return (await fs.readdir(dir)).sort();
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
  }

  const tempPath = (file: string): string => path.join(path.dirname(file), `.${path.basename(file)}.tmp`);

  /** Write a temp file next to `file` and fsync it (not yet visible under its name). */
  async function writeTemp(file: string, content: string, mode: number): Promise<string> {
    const tmp = tempPath(file);
    const handle = await fs.open(tmp, 'w', mode);
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
      // A temp file left by a crash keeps its old mode when reopened: set it explicitly.
      await handle.chmod(mode);
    } finally {
      await handle.close();
    }
    return tmp;
  }

  /** Temp file in the same directory, fsync, rename: readers see the old or the new file, never half. */
  async function writeAtomic(file: string, content: string, mode: number): Promise<void> {
    const tmp = await writeTemp(file, content, mode);
    await fs.rename(tmp, file);
    await syncDir(path.dirname(file));
  }

  /**
   * Write several files of one directory atomically and durably, as a batch: every temp file is
   * written and fsync'd (concurrently), then each is renamed over its target, then the directory
   * is fsync'd once. Each file is durable before its rename and every rename is durable before
   * this returns (before the phase is checkpointed), exactly as with writeAtomic file by file. A
   * crash in between leaves old or new files (never torn ones) and `.tmp` leftovers, which the
   * next run of the phase prunes and rewrites: a re-run converges.
   */
  async function writeFiles(dir: string, files: ReadonlyArray<{ file: string; content: string }>, mode: number, ctx: ProviderContext): Promise<void> {
    if (files.length === 0) return;
    await ensureDir(dir);
    const temps = await Promise.all(
      files.map(async (f) => {
        checkAbort(ctx);
        return { tmp: await writeTemp(f.file, f.content, mode), file: f.file };
      }),
    );
    for (const t of temps) await fs.rename(t.tmp, t.file);
    await syncDir(dir);
  }

  /** mkdir -p; directories it creates are made durable in their parents (fsync of each parent). */
  async function ensureDir(dir: string): Promise<void> {
    const first = await fs.mkdir(dir, { recursive: true });
    if (first === undefined) return;
    const created: string[] = [];
    for (let d = dir; ; d = path.dirname(d)) {
      created.push(d);
      if (d === first || path.dirname(d) === d) break;
    }
    // each created directory's entry lives in its parent
    for (const d of created.reverse()) await syncDir(path.dirname(d));
  }

  /** Makes a rename durable. Best effort: not every platform can fsync a directory. */
  async function syncDir(dir: string): Promise<void> {
    let handle: Awaited<ReturnType<Fs['open']>> | undefined;
    try {
      handle = await fs.open(dir, 'r');
      await handle.sync();
    } catch {
      // ignored: the rename itself is atomic either way
    } finally {
      await handle?.close();
    }
  }

  async function ensurePrivateDir(dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true, mode: SECRET_DIR_MODE });
    const st = await fs.stat(dir);
    if ((st.mode & 0o777) !== SECRET_DIR_MODE) await fs.chmod(dir, SECRET_DIR_MODE);
  }

  // --- desired vs written -------------------------------------------------------------------

  /** The object as the render provider writes it: generated Secrets point at their value file. */
  function writtenForm(obj: KubeObject, rendered: RenderedTenant): KubeObject {
    if (obj.kind !== 'Secret' || obj.apiVersion !== 'v1') return obj;
    if (!rendered.generatedSecrets.some((s) => s.name === obj.metadata.name && s.namespace === obj.metadata.namespace)) return obj;
    return sortKeysDeep({
      ...obj,
      metadata: {
        ...obj.metadata,
        annotations: { ...obj.metadata.annotations, [ANNOTATION_SECRET_FILE]: secretRelPath(rendered.tenantId, obj.metadata.name) },
      },
    });
  }

  /**
   * Serialized manifests per rendering and group. One operation hands the same RenderedTenant to
   * plan, apply, deploy, configure and verify, so each object is turned into YAML once, not three
   * times (YAML serialization was the largest CPU cost of a reconcile). Renderings are not mutated.
   */
  const serialized = new WeakMap<RenderedTenant, Map<ApplyGroup, DesiredFile[]>>();

  function groupFiles(rendered: RenderedTenant, group: ApplyGroup): DesiredFile[] {
    let byGroup = serialized.get(rendered);
    if (!byGroup) serialized.set(rendered, (byGroup = new Map()));
    let files = byGroup.get(group);
    if (!files) {
      files = [];
      for (const source of rendered.groups[group]) {
        checkName(rendered.tenantId, source.metadata.name);
        const obj = writtenForm(source, rendered);
        files.push({ group, rel: `${GROUP_DIRS[group]}/${fileNameFor(obj)}`, ref: objectRef(obj), obj, text: toManifestYaml(obj) });
      }
      byGroup.set(group, files);
    }
    return files;
  }

  function desiredFiles(rendered: RenderedTenant | null, groups: readonly ApplyGroup[]): DesiredFile[] {
    if (!rendered) return [];
    return groups.flatMap((group) => groupFiles(rendered, group));
  }

  /** The manifests of `groups` on disk, and every name in their directories (leftovers included). */
  async function readGroups(tenantId: string, groups: readonly ApplyGroup[]): Promise<{ files: WrittenFile[]; names: Map<ApplyGroup, string[]> }> {
    const root = renderedTenantDir(dataDir, tenantId);
    const files: WrittenFile[] = [];
    const names = new Map<ApplyGroup, string[]>();
    for (const group of groups) {
      const dir = path.join(root, GROUP_DIRS[group]);
      const all = await readDirNames(dir);
      names.set(group, all);
      const manifests = all.filter(isManifestFile);
      const texts = await Promise.all(manifests.map((name) => readText(path.join(dir, name))));
      manifests.forEach((name, i) => {
        const text = texts[i];
        if (text !== null && text !== undefined) files.push(writtenFile(group, `${GROUP_DIRS[group]}/${name}`, text));
      });
    }
    return { files, names };
  }

  async function readWritten(tenantId: string, groups: readonly ApplyGroup[]): Promise<WrittenFile[]> {
    return (await readGroups(tenantId, groups)).files;
  }

  function writtenRef(w: WrittenFile): KubeObjectRef {
    if (w.obj) return objectRef(w.obj);
    // Unparsable: name it after its file, `<NN>-<kind>-<name>.yaml`.
    const base = path.posix.basename(w.rel, '.yaml');
    const m = /^\d+-([a-z0-9]+)-(.+)$/.exec(base);
    return { apiVersion: 'unknown', kind: m?.[1] ?? 'unknown', name: m?.[2] ?? base };
  }

  function compare(desired: DesiredFile[], written: WrittenFile[]): Comparison {
    const byRel = new Map(written.map((w) => [w.rel, w]));
    const desiredRels = new Set(desired.map((d) => d.rel));
    const changes: ResourceChange[] = [];
    const toWrite: DesiredFile[] = [];
    for (const d of desired) {
      const w = byRel.get(d.rel);
      if (!w) {
        changes.push({ ref: d.ref, action: 'create' });
        toWrite.push(d);
      } else if (w.text === d.text) {
        // the bytes we would write: the same object, nothing to parse or rewrite
        changes.push({ ref: d.ref, action: 'unchanged' });
      } else if (!w.obj) {
        changes.push({ ref: d.ref, action: 'update', fields: ['.'] });
        toWrite.push(d);
      } else if (canonicalJson(w.obj) !== canonicalJson(d.obj)) {
        changes.push({ ref: d.ref, action: 'update', fields: diffPaths(w.obj, d.obj) });
        toWrite.push(d);
      } else {
        changes.push({ ref: d.ref, action: 'unchanged' });
        // Same object, different bytes (a comment edited): rewrite quietly.
        if (w.text !== d.text) toWrite.push(d);
      }
    }
    const toDelete = written.filter((w) => !desiredRels.has(w.rel)).sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
    for (const w of toDelete) changes.push({ ref: writtenRef(w), action: 'delete' });
    return { changes, toWrite, toDelete };
  }

  const counts = (changes: ResourceChange[]): Record<'create' | 'update' | 'delete' | 'unchanged', number> => ({
    create: changes.filter((c) => c.action === 'create').length,
    update: changes.filter((c) => c.action === 'update' || c.action === 'replace').length,
    delete: changes.filter((c) => c.action === 'delete').length,
    unchanged: changes.filter((c) => c.action === 'unchanged').length,
  });

  // --- secrets ------------------------------------------------------------------------------

  /** Values of a secret file; null when absent. A corrupt file is an error that never quotes it. */
  async function readSecretValues(tenantId: string, secretName: string): Promise<{ text: string; values: Record<string, string> } | null> {
    const text = await readText(path.join(secretsTenantDir(dataDir, tenantId), secretFileName(secretName)));
    if (text === null) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // No cause: a JSON syntax error message quotes the file's content.
      parsed = undefined;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
      throw stalled('E_SECRET_STORE_CORRUPT', `secret file ${secretRelPath(tenantId, secretName)} is not a JSON object of strings; restore or remove it`, {
        tenantId,
        secret: secretName,
      });
    }
    return { text, values: parsed as Record<string, string> };
  }

  const secretComplete = (gs: GeneratedSecret, values: Record<string, string> | undefined): boolean =>
    values !== undefined &&
    gs.generatedKeys.every((k) => typeof values[k] === 'string' && values[k] !== '') &&
    Object.entries(gs.fixed).every(([k, v]) => values[k] === v);

  /** Creates missing secret values once; keeps existing ones. Returns the secrets it wrote. */
  async function ensureSecrets(ctx: ProviderContext, rendered: RenderedTenant): Promise<string[]> {
    if (rendered.generatedSecrets.length === 0) return [];
    const tenantId = rendered.tenantId;
    await fs.mkdir(dataDir, { recursive: true });
    await ensurePrivateDir(path.join(dataDir, SECRETS_DIR));
    const dir = secretsTenantDir(dataDir, tenantId);
    await ensurePrivateDir(dir);
    const written: string[] = [];
    for (const gs of [...rendered.generatedSecrets].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      checkName(tenantId, gs.name);
      const file = path.join(dir, secretFileName(gs.name));
      const existing = await readSecretValues(tenantId, gs.name);
      const values: Record<string, string> = { ...(existing?.values ?? {}) };
      const generated: string[] = [];
      for (const key of gs.generatedKeys) {
        if (typeof values[key] !== 'string' || values[key] === '') {
          values[key] = randomBytes(GENERATED_SECRET_BYTES).toString('base64url');
          generated.push(key);
        }
      }
      Object.assign(values, gs.fixed);
      const text = `${JSON.stringify(sortKeysDeep(values), null, 2)}\n`;
      if (existing?.text === text) {
        const st = await fs.stat(file);
        if ((st.mode & 0o777) !== SECRET_FILE_MODE) await fs.chmod(file, SECRET_FILE_MODE);
        continue;
      }
      checkAbort(ctx);
      await writeAtomic(file, text, SECRET_FILE_MODE);
      written.push(gs.name);
      ctx.progress(generated.length > 0 ? `generated secret ${gs.name} (keys: ${generated.join(', ')})` : `updated secret ${gs.name}`, {
        secret: gs.name,
        generatedKeys: generated,
      });
    }
    return written;
  }

  /** Secrets whose value file is missing or incomplete, as Secret refKeys. */
  async function incompleteSecrets(rendered: RenderedTenant): Promise<{ gs: GeneratedSecret; key: string }[]> {
    const out: { gs: GeneratedSecret; key: string }[] = [];
    for (const gs of rendered.generatedSecrets) {
      const existing = await readSecretValues(rendered.tenantId, gs.name);
      if (!secretComplete(gs, existing?.values)) out.push({ gs, key: refKey({ apiVersion: 'v1', kind: 'Secret', name: gs.name, namespace: gs.namespace }) });
    }
    return out;
  }

  // --- phases -------------------------------------------------------------------------------

  /** Writes one group: the desired files that differ, then prunes what is no longer rendered. */
  async function syncGroups(ctx: ProviderContext, tenantId: string, groups: readonly ApplyGroup[]) {
    const desired = desiredFiles(ctx.desired, groups);
    const { files: written, names } = await readGroups(tenantId, groups);
    const { changes, toWrite, toDelete } = compare(desired, written);
    const root = renderedTenantDir(dataDir, tenantId);
    const wrote: { ref: string; action: 'create' | 'update' }[] = [];
    const writtenRels = new Set(written.map((w) => w.rel));
    // One batch per group directory (compare() already skipped files whose bytes are identical).
    for (const group of groups) {
      const batch = toWrite.filter((d) => d.group === group);
      if (batch.length === 0) continue;
      checkAbort(ctx);
      await writeFiles(path.join(root, GROUP_DIRS[group]), batch.map((d) => ({ file: path.join(root, d.rel), content: d.text })), 0o644, ctx);
      for (const d of batch) {
        const action = writtenRels.has(d.rel) ? 'update' : 'create';
        wrote.push({ ref: refKey(d.ref), action });
        ctx.progress(`${action === 'create' ? 'created' : 'updated'} ${refKey(d.ref)}`, { ref: refKey(d.ref), action, file: d.rel });
      }
    }
    const removed: string[] = [];
    const removedRels = new Set<string>();
    for (const w of toDelete) {
      checkAbort(ctx);
      await fs.rm(path.join(root, w.rel), { force: true });
      removedRels.add(w.rel);
      removed.push(refKey(writtenRef(w)));
      ctx.progress(`removed ${refKey(writtenRef(w))}`, { ref: refKey(writtenRef(w)), action: 'delete', file: w.rel });
    }
    // Leftovers that are not manifests (temp files of an interrupted write) go too. The listing
    // taken before the writes serves: the writes above only add desired names.
    const desiredRels = new Set(desired.map((d) => d.rel));
    for (const group of groups) {
      const dir = path.join(root, GROUP_DIRS[group]);
      const present = (names.get(group) ?? []).filter((name) => !removedRels.has(`${GROUP_DIRS[group]}/${name}`));
      for (const name of present) {
        const rel = `${GROUP_DIRS[group]}/${name}`;
        if (desiredRels.has(rel)) continue;
        checkAbort(ctx);
        await fs.rm(path.join(dir, name), { recursive: true, force: true });
      }
      if (present.length > 0 && !desired.some((d) => d.group === group)) await fs.rm(dir, { recursive: true, force: true });
    }
    return { changes, wrote, removed, desiredCount: desired.length };
  }

  async function phase(ctx: ProviderContext, group: ApplyGroup, phaseName: string): Promise<PhaseResult> {
    const tenantId = tenantIdOf(ctx);
    checkAbort(ctx);
    const secretsWritten = group === 'Apply' && ctx.desired ? await ensureSecrets(ctx, ctx.desired) : [];
    const { wrote, removed, desiredCount } = await syncGroups(ctx, tenantId, [group]);
    const created = wrote.filter((w) => w.action === 'create').map((w) => w.ref);
    const updated = wrote.filter((w) => w.action === 'update').map((w) => w.ref);
    const unchanged = desiredCount - wrote.length;
    const result: PhaseResult = {
      summary:
        wrote.length === 0 && removed.length === 0
          ? `${phaseName}: ${desiredCount} ${group} objects up to date`
          : `${phaseName}: ${created.length} created, ${updated.length} updated, ${removed.length} removed, ${unchanged} unchanged (${group} group)`,
      details: { group, created, updated, removed, unchanged, secretsWritten, dir: path.join(renderedTenantDir(dataDir, tenantId), GROUP_DIRS[group]) },
    };
    if (ctx.desired && group === 'Configure') result.outputs = outputsFor(ctx.desired);
    return result;
  }

  async function plan(ctx: ProviderContext): Promise<PlanResult> {
    const tenantId = tenantIdOf(ctx);
    const desired = desiredFiles(ctx.desired, APPLY_GROUPS);
    const written = await readWritten(tenantId, APPLY_GROUPS);
    const { changes } = compare(desired, written);
    const secretsToGenerate = ctx.desired ? (await incompleteSecrets(ctx.desired)).map((s) => s.gs.name) : [];
    const n = counts(changes);
    const result: PlanResult = {
      summary: `plan: ${n.create} to create, ${n.update} to update, ${n.delete} to delete, ${n.unchanged} unchanged`,
      details: { ...n, secretsToGenerate, ...(ctx.desired ? { digest: ctx.desired.digest } : {}) },
      changes,
    };
    if (ctx.desired) result.outputs = outputsFor(ctx.desired);
    return result;
  }

  async function verify(ctx: ProviderContext): Promise<PhaseResult> {
    const tenantId = tenantIdOf(ctx);
    if (!ctx.desired) {
      const leftovers = (await readWritten(tenantId, APPLY_GROUPS)).map((w) => refKey(writtenRef(w)));
      const renderedLeft = await exists(renderedTenantDir(dataDir, tenantId));
      const secretsLeft = await exists(secretsTenantDir(dataDir, tenantId));
      if (leftovers.length > 0 || renderedLeft || secretsLeft) {
        throw retryable('E_VERIFY_MISMATCH', `tenant ${tenantId} is not fully removed: ${leftovers.length > 0 ? listNames(leftovers) : secretsLeft ? 'secrets remain' : 'rendered directory remains'}`, {
          tenantId,
          unexpected: leftovers,
          secretsRemain: secretsLeft,
        });
      }
      return { summary: `verify: tenant ${tenantId} has no rendered objects`, details: { objects: 0 } };
    }
    const desired = desiredFiles(ctx.desired, APPLY_GROUPS);
    const { changes } = compare(desired, await readWritten(tenantId, APPLY_GROUPS));
    const missing = changes.filter((c) => c.action === 'create').map((c) => refKey(c.ref));
    const changed = changes.filter((c) => c.action === 'update').map((c) => refKey(c.ref));
    const unexpected = changes.filter((c) => c.action === 'delete').map((c) => refKey(c.ref));
    const secretsMissing = (await incompleteSecrets(ctx.desired)).map((s) => s.key);
    if (missing.length + changed.length + unexpected.length + secretsMissing.length > 0) {
      const parts = [
        missing.length > 0 ? `missing ${listNames(missing)}` : '',
        changed.length > 0 ? `changed ${listNames(changed)}` : '',
        unexpected.length > 0 ? `unexpected ${listNames(unexpected)}` : '',
        secretsMissing.length > 0 ? `secret values missing for ${listNames(secretsMissing)}` : '',
      ].filter(Boolean);
      throw retryable('E_VERIFY_MISMATCH', `rendered files of tenant ${tenantId} do not match the desired objects: ${parts.join('; ')}`, {
        tenantId,
        missing,
        changed,
        unexpected,
        secretsMissing,
      });
    }
    return {
      summary: `verify: ${desired.length} rendered objects match`,
      details: { objects: desired.length, digest: ctx.desired.digest },
      outputs: outputsFor(ctx.desired),
    };
  }

  async function destroy(ctx: ProviderContext): Promise<PhaseResult> {
    const tenantId = tenantIdOf(ctx);
    checkAbort(ctx);
    const written = await readWritten(tenantId, APPLY_GROUPS);
    const secretNames = (await readDirNames(secretsTenantDir(dataDir, tenantId))).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    await fs.rm(renderedTenantDir(dataDir, tenantId), { recursive: true, force: true });
    ctx.progress(`removed ${written.length} rendered objects of tenant ${tenantId}`, { objects: written.length });
    checkAbort(ctx);
    await fs.rm(secretsTenantDir(dataDir, tenantId), { recursive: true, force: true });
    if (secretNames.length > 0) ctx.progress(`removed ${secretNames.length} secrets of tenant ${tenantId}`, { secrets: secretNames.length });
    return {
      summary: `destroy: removed ${written.length} rendered objects and ${secretNames.length} secrets`,
      details: { removed: written.map((w) => refKey(writtenRef(w))), secretsRemoved: secretNames.length },
    };
  }

  async function refresh(ctx: ProviderContext, correct: boolean): Promise<DriftReport> {
    const tenantId = tenantIdOf(ctx);
    const desired = desiredFiles(ctx.desired, APPLY_GROUPS);
    const { changes } = compare(desired, await readWritten(tenantId, APPLY_GROUPS));
    if (ctx.desired) {
      for (const { key } of await incompleteSecrets(ctx.desired)) {
        const existing = changes.find((c) => refKey(c.ref) === key);
        if (existing && existing.action === 'unchanged') {
          existing.action = 'update';
          existing.fields = ['data'];
        } else if (existing && existing.action === 'update') {
          existing.fields = [...new Set([...(existing.fields ?? []), 'data'])].sort();
        }
      }
    }
    const drift = changes.filter((c) => c.action !== 'unchanged');
    const drifted = drift.length > 0;
    if (drifted && correct) {
      checkAbort(ctx);
      if (ctx.desired) await ensureSecrets(ctx, ctx.desired);
      await syncGroups(ctx, tenantId, APPLY_GROUPS);
    }
    return { drifted, changes: drift, corrected: drifted && correct };
  }

  return {
    name: 'render',
    plan,
    apply: (ctx) => phase(ctx, 'Apply', 'apply'),
    deploy: (ctx) => phase(ctx, 'Deploy', 'deploy'),
    configure: (ctx) => phase(ctx, 'Configure', 'configure'),
    verify,
    destroy,
    refresh,
    async ready(): Promise<boolean> {
      try {
        await fs.mkdir(dataDir, { recursive: true });
        await fs.access(dataDir, fs.constants.W_OK);
        return true;
      } catch {
        return false;
      }
    },
    async close(): Promise<void> {},
  };
}
