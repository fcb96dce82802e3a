import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { stalled, type TenantdError } from '../../core/errors.js';
import { isRecord } from '../../core/is-record.js';

/**
 * Git webhook verification for GitHub, GitLab, Gitea (and Forgejo), Bitbucket (Cloud and Data
 * Center) and a generic HMAC-signed call. The signature is checked over the RAW request body,
 * before the body is parsed; every comparison is `timingSafeEqual` on equal-length digests.
 *
 * Headers are looked up case-insensitively. A secret may be a list, to rotate it without downtime
 * (a delivery is valid if any of them verifies).
 */

export const WEBHOOK_PROVIDERS = ['github', 'gitlab', 'gitea', 'bitbucket', 'generic'] as const;
export type WebhookProvider = (typeof WEBHOOK_PROVIDERS)[number];

export const WEBHOOK_ERROR_CODES = {
  signature: 'E_WEBHOOK_SIGNATURE',
  payload: 'E_WEBHOOK_PAYLOAD',
  provider: 'E_WEBHOOK_PROVIDER',
  config: 'E_WEBHOOK_CONFIG',
} as const;

export type WebhookEvent = 'push' | 'ping' | 'other';

export interface WebhookDelivery {
  readonly provider: WebhookProvider;
  /** The provider's delivery id (printable ASCII, ≤ 128 chars), else `sha256:<hex>` of the body. */
  readonly deliveryId: string;
  /** `sha256:<hex>` of the raw body: the DeliveryLog also remembers it, because delivery-id headers are not signed. */
  readonly bodyDigest: string;
  readonly event: WebhookEvent;
  /** The provider's own event name, as sent (e.g. `push`, `Push Hook`, `repo:push`), ≤ 64 chars. */
  readonly rawEvent: string | null;
  /** The full ref pushed (`refs/heads/main`, `refs/tags/v1`); null when not a push or not given. */
  readonly ref: string | null;
  /** The branch pushed (`main`), null when not a push or the ref is not a branch (a tag). */
  readonly branch: string | null;
  /** The new head commit of `branch`; null for a branch deletion or when not given. */
  readonly after: string | null;
}

export interface VerifyWebhookOptions {
  /**
   * The branch the daemon tracks. Bitbucket batches several ref changes in one delivery: the
   * change to this branch is reported when present, otherwise the first branch change.
   */
  readonly branch?: string;
}

export type WebhookHeaders = Record<string, string | string[] | undefined>;

const isWebhookProvider = (p: string): p is WebhookProvider => (WEBHOOK_PROVIDERS as readonly string[]).includes(p);
export { isWebhookProvider };

const sigError = (provider: string, reason: string, message: string): TenantdError =>
  stalled(WEBHOOK_ERROR_CODES.signature, message, { provider, reason });
const payloadError = (provider: string, message: string, data: Record<string, unknown> = {}): TenantdError =>
  stalled(WEBHOOK_ERROR_CODES.payload, message, { provider, ...data });

/** Case-insensitive header lookup; with `single`, a header sent more than once is an error. */
function header(headers: WebhookHeaders, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== lower || v === undefined) continue;
    if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
    return v;
  }
  return undefined;
}

function headerCount(headers: WebhookHeaders, name: string): number {
  const lower = name.toLowerCase();
  let n = 0;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== lower || v === undefined) continue;
    n += Array.isArray(v) ? v.length : 1;
  }
  return n;
}

const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
const HEX64 = /^[0-9a-f]{64}$/i;

/** A hex HMAC-SHA256 signature (with `prefix`, e.g. `sha256=`) against every secret, in constant time. */
function checkHmac(provider: string, headers: WebhookHeaders, name: string, prefix: string, body: Buffer, secrets: readonly string[]): void {
  if (headerCount(headers, name) > 1) throw sigError(provider, 'duplicate', `${name} was sent more than once`);
  const value = header(headers, name)?.trim();
  if (!value) throw sigError(provider, 'missing', `the ${name} header is missing`);
  const hex = value.toLowerCase().startsWith(prefix) ? value.slice(prefix.length) : null;
  if (hex === null || !HEX64.test(hex)) throw sigError(provider, 'malformed', `the ${name} header must be ${prefix}<64 hex digits>`);
  const given = Buffer.from(hex, 'hex');
  let ok = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(body).digest();
    if (timingSafeEqual(given, expected)) ok = true;
  }
  if (!ok) throw sigError(provider, 'mismatch', `the ${name} signature does not match the body`);
}

/** A shared token header (GitLab) compared as SHA-256 digests, so lengths never leak. */
function checkToken(provider: string, headers: WebhookHeaders, name: string, secrets: readonly string[]): void {
  if (headerCount(headers, name) > 1) throw sigError(provider, 'duplicate', `${name} was sent more than once`);
  const value = header(headers, name);
  if (value === undefined || value === '') throw sigError(provider, 'missing', `the ${name} header is missing`);
  const given = createHash('sha256').update(value, 'utf8').digest();
  let ok = false;
  for (const secret of secrets) {
    if (timingSafeEqual(given, createHash('sha256').update(secret, 'utf8').digest())) ok = true;
  }
  if (!ok) throw sigError(provider, 'mismatch', `the ${name} token does not match`);
}

/** JSON body, or a form body with a `payload` field (GitHub/Gitea "application/x-www-form-urlencoded"). */
function parseBody(provider: string, headers: WebhookHeaders, body: Buffer): unknown {
  const contentType = (header(headers, 'content-type') ?? '').toLowerCase();
  let text = body.toString('utf8');
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw payloadError(provider, 'form body has no payload field');
    text = payload;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw payloadError(provider, 'body is not valid JSON');
  }
}

const SAFE_ID = /^[\x21-\x7e]{1,128}$/;
const SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;
const ZERO_SHA = /^0+$/;

/** The delivery id header when it is printable ASCII ≤ 128 chars, else a digest of it, else of the body. */
function deliveryId(headers: WebhookHeaders, names: readonly string[], bodyDigest: string): string {
  for (const name of names) {
    const v = header(headers, name)?.trim();
    if (!v) continue;
    return SAFE_ID.test(v) ? v : `sha256:${sha256Hex(v)}`;
  }
  return bodyDigest;
}

function rawEventOf(headers: WebhookHeaders, names: readonly string[]): string | null {
  for (const name of names) {
    const v = header(headers, name)?.trim();
    // eslint-disable-next-line no-control-regex
    if (v) return v.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 64);
  }
  return null;
}

/** A ref name that is safe to compare and log: no control characters, no spaces, ≤ 255 chars. */
function refString(provider: string, value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value.length === 0 || value.length > 255 || /[\x00-\x20\x7f~^:?*[\\]/.test(value) || value.includes('..')) {
    throw payloadError(provider, `${field} is not a valid git ref name`, { field });
  }
  return value;
}

function shaString(provider: string, value: unknown, field: string): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || !SHA.test(value)) throw payloadError(provider, `${field} is not a commit id`, { field });
  return ZERO_SHA.test(value) ? null : value.toLowerCase();
}

const branchOfRef = (ref: string | null): string | null => (ref?.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) || null : null);

interface PushInfo {
  ref: string | null;
  after: string | null;
}

/** GitHub, Gitea and GitLab push bodies: `ref` + `after`. */
function refAfterPush(provider: string, body: unknown): PushInfo {
  if (!isRecord(body)) throw payloadError(provider, 'push body is not a JSON object');
  const ref = refString(provider, body.ref, 'ref');
  if (ref === null) throw payloadError(provider, 'push body has no ref', { field: 'ref' });
  return { ref, after: shaString(provider, body.after, 'after') };
}

/** Bitbucket Cloud (`push.changes[].new`) or Data Center (`changes[].ref` + `toHash`). */
function bitbucketPush(body: unknown, preferBranch: string | undefined): PushInfo {
  const p = 'bitbucket';
  if (!isRecord(body)) throw payloadError(p, 'push body is not a JSON object');
  const changes: PushInfo[] = [];
  if (isRecord(body.push) && Array.isArray(body.push.changes)) {
    for (const change of body.push.changes as unknown[]) {
      if (!isRecord(change)) continue;
      const side = isRecord(change.new) ? change.new : isRecord(change.old) ? change.old : null;
      if (!side || (side.type !== 'branch' && side.type !== 'tag')) continue;
      const name = refString(p, side.name, 'push.changes[].new.name');
      if (name === null) continue;
      const after = isRecord(change.new) && isRecord(change.new.target) ? shaString(p, change.new.target.hash, 'push.changes[].new.target.hash') : null;
      changes.push({ ref: `refs/${side.type === 'branch' ? 'heads' : 'tags'}/${name}`, after });
    }
  } else if (Array.isArray(body.changes)) {
    for (const change of body.changes as unknown[]) {
      if (!isRecord(change) || !isRecord(change.ref)) continue;
      const ref = refString(p, change.ref.id, 'changes[].ref.id');
      if (ref === null) continue;
      changes.push({ ref, after: change.type === 'DELETE' ? null : shaString(p, change.toHash, 'changes[].toHash') });
    }
  } else {
    throw payloadError(p, 'push body has neither push.changes nor changes');
  }
  if (changes.length === 0) throw payloadError(p, 'push body has no ref changes');
  const preferred = preferBranch === undefined ? undefined : changes.find((c) => branchOfRef(c.ref) === preferBranch);
  return preferred ?? changes.find((c) => branchOfRef(c.ref) !== null) ?? (changes[0] as PushInfo);
}

/** The generic provider: `{ "ref": "refs/heads/main" | "branch": "main", "after": "<sha>" }`, all optional. */
function genericPush(body: unknown): PushInfo {
  const p = 'generic';
  if (!isRecord(body)) throw payloadError(p, 'body is not a JSON object');
  let ref = refString(p, body.ref, 'ref');
  const branch = refString(p, body.branch, 'branch');
  if (ref === null && branch !== null) ref = `refs/heads/${branch}`;
  else if (ref !== null && branch !== null && branchOfRef(ref) !== branch) throw payloadError(p, 'ref and branch disagree', { field: 'branch' });
  return { ref, after: shaString(p, body.after, 'after') };
}

function normalizeSecrets(secret: string | readonly string[]): string[] {
  const secrets = (typeof secret === 'string' ? [secret] : [...secret]).filter((s) => s.length > 0);
  if (secrets.length === 0) throw stalled(WEBHOOK_ERROR_CODES.config, 'no webhook secret is configured for this provider', {});
  return secrets;
}

/**
 * Authenticate a webhook delivery and say what it is. Order: provider (E_WEBHOOK_PROVIDER), secret
 * configured (E_WEBHOOK_CONFIG), signature over the raw body (E_WEBHOOK_SIGNATURE), and only then
 * the body (E_WEBHOOK_PAYLOAD) — an unauthenticated body is never parsed.
 */
export function verifyWebhook(
  provider: string,
  headers: WebhookHeaders,
  rawBody: Buffer,
  secret: string | readonly string[],
  options: VerifyWebhookOptions = {},
): WebhookDelivery {
  const name = provider.toLowerCase();
  if (!isWebhookProvider(name)) {
    throw stalled(WEBHOOK_ERROR_CODES.provider, `unknown webhook provider "${provider.slice(0, 32)}"`, { provider: provider.slice(0, 32), known: [...WEBHOOK_PROVIDERS] });
  }
  const secrets = normalizeSecrets(secret);
  const bodyDigest = `sha256:${sha256Hex(rawBody)}`;
  const base = { provider: name, bodyDigest };

  switch (name) {
    case 'github': {
      checkHmac(name, headers, 'x-hub-signature-256', 'sha256=', rawBody, secrets);
      const body = parseBody(name, headers, rawBody);
      const rawEvent = rawEventOf(headers, ['x-github-event']);
      return finish(base, deliveryId(headers, ['x-github-delivery'], bodyDigest), rawEvent, rawEvent === 'push' ? refAfterPush(name, body) : null, rawEvent === 'ping');
    }
    case 'gitea': {
      if (header(headers, 'x-gitea-signature') === undefined && header(headers, 'x-forgejo-signature') !== undefined) {
        checkHmac(name, headers, 'x-forgejo-signature', '', rawBody, secrets);
      } else {
        checkHmac(name, headers, 'x-gitea-signature', '', rawBody, secrets);
      }
      const body = parseBody(name, headers, rawBody);
      const rawEvent = rawEventOf(headers, ['x-gitea-event', 'x-forgejo-event', 'x-gogs-event']);
      const id = deliveryId(headers, ['x-gitea-delivery', 'x-forgejo-delivery', 'x-gogs-delivery'], bodyDigest);
      return finish(base, id, rawEvent, rawEvent === 'push' ? refAfterPush(name, body) : null, rawEvent === 'ping');
    }
    case 'gitlab': {
      checkToken(name, headers, 'x-gitlab-token', secrets);
      const body = parseBody(name, headers, rawBody);
      const rawEvent = rawEventOf(headers, ['x-gitlab-event']);
      // project hooks say "Push Hook"; system hooks say "System Hook" with object_kind "push"
      const isPush = rawEvent === 'Push Hook' || (rawEvent === 'System Hook' && isRecord(body) && body.object_kind === 'push');
      const id = deliveryId(headers, ['x-gitlab-event-uuid', 'idempotency-key'], bodyDigest);
      return finish(base, id, rawEvent, isPush ? refAfterPush(name, body) : null, false);
    }
    case 'bitbucket': {
      checkHmac(name, headers, 'x-hub-signature', 'sha256=', rawBody, secrets);
      const body = parseBody(name, headers, rawBody);
      const rawEvent = rawEventOf(headers, ['x-event-key']);
      const isPush = rawEvent === 'repo:push' || rawEvent === 'repo:refs_changed';
      const id = deliveryId(headers, ['x-request-uuid', 'x-request-id'], bodyDigest);
      return finish(base, id, rawEvent, isPush ? bitbucketPush(body, options.branch) : null, rawEvent === 'diagnostics:ping');
    }
    case 'generic': {
      checkHmac(name, headers, 'x-tenantd-signature', 'sha256=', rawBody, secrets);
      const body = parseBody(name, headers, rawBody);
      const rawEvent = rawEventOf(headers, ['x-tenantd-event']);
      const ping = rawEvent === 'ping';
      return finish(base, deliveryId(headers, ['x-tenantd-delivery'], bodyDigest), rawEvent, ping ? null : genericPush(body), ping);
    }
  }
}

function finish(
  base: { provider: WebhookProvider; bodyDigest: string },
  deliveryId: string,
  rawEvent: string | null,
  push: PushInfo | null,
  ping: boolean,
): WebhookDelivery {
  const event: WebhookEvent = push ? 'push' : ping ? 'ping' : 'other';
  return {
    ...base,
    deliveryId,
    event,
    rawEvent,
    ref: push?.ref ?? null,
    branch: branchOfRef(push?.ref ?? null),
    after: push?.after ?? null,
  };
}

/**
 * Whether a verified delivery should make the daemon fetch and reconcile: a push to the tracked
 * branch, or a generic call that names no ref at all ("something changed, fetch"). Pushes to other
 * branches and to tags, pings and other events are acknowledged and ignored.
 */
export function isRelevantPush(delivery: WebhookDelivery, trackedBranch: string): boolean {
  if (delivery.event !== 'push') return false;
  return delivery.branch === trackedBranch || (delivery.provider === 'generic' && delivery.ref === null);
}

/** Sign a body the way the generic provider expects (`sha256=<hex>`), for clients and tests. */
export function signGeneric(body: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
