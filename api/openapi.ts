import packageJson from '../package.json' with { type: 'json' };
import statusSchema from '../schemas/status.schema.json' with { type: 'json' };
import tenantSchema from '../schemas/tenant.schema.json' with { type: 'json' };
import transitionSchema from '../schemas/transition.schema.json' with { type: 'json' };
import { PHASES, STATUSES } from '../core/phases.js';
import { componentRef as ref, mergePatchSchema, provisionBodySchema, referencedComponents, schemaComponents, subschema, type Components, type JsonSchema } from './schema-components.js';

type Json = Record<string, unknown>;

const json = (schema: Json): Json => ({ 'application/json': { schema } });
const ok = (description: string, schema: Json, headers?: Json): Json => ({ description, ...(headers ? { headers } : {}), content: json(schema) });
const problem = (description: string): Json => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const nullable = (schema: Json): Json => ({ oneOf: [schema, { type: 'null' }] });
const header = (description: string): Json => ({ description, schema: { type: 'string' } });

const tenantIdParam = { name: 'tenantId', in: 'path', required: true, description: 'DNS-1123 label, at most 56 characters', schema: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 56 } };
const idempotencyKey = { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 }, description: 'A retried request with the same key returns the first answer and makes no second commit' };
const ifMatch = { name: 'If-Match', in: 'header', required: false, schema: { type: 'string' }, description: 'The ETag from GET; 412 when the tenant changed since' };
const PUBLIC: Json[] = [];

/** Responses every authenticated route can give; `tenantRoute` adds the 400 of a malformed tenant id. */
const authErrors = { '401': problem('Missing or invalid token (with WWW-Authenticate: Bearer)'), '403': problem('The token lacks the scope this call needs') };
const unexpected = { default: problem('Unexpected error: 500, or 503 with Retry-After while the repository cannot be reached') };
const badTenantId = problem('Malformed tenant id (E_BAD_TENANT_ID) or query parameter (E_BAD_QUERY)');
const writeErrors = {
  '400': problem('Malformed tenant id, malformed JSON (E_BAD_JSON) or an Idempotency-Key longer than 255 characters'),
  '409': problem('A request with this Idempotency-Key is still in progress (E_IDEMPOTENCY_IN_PROGRESS)'),
  '413': problem('Body larger than the limit (64 KiB by default)'),
  '415': problem('Content-Type is not one this route accepts'),
  '422': problem('The resulting tenant is invalid (E_VALIDATION, with `errors` naming each field), or the Idempotency-Key was used with a different body'),
};
const writeHeaders = { Location: header('The tenant\'s URL'), ETag: header('The tenant file\'s new ETag, for If-Match') };

/** Every schema in `schemas/` as components; the API bodies derive from them. */
function schemaFileComponents(): Components {
  const tenant = schemaComponents(tenantSchema, 'TenantDocument', 'Tenant');
  const status = schemaComponents(statusSchema, 'TenantStatusFile', 'Status');
  const transition = schemaComponents(transitionSchema, 'InfrastructureStateTransition', 'Transition');
  const all: Components = {};
  for (const part of [tenant, status, transition]) {
    for (const [name, schema] of Object.entries(part)) {
      if (name in all) throw new Error(`OpenAPI: two schema files both define the component ${name}`);
      all[name] = schema;
    }
  }
  return all;
}

function apiSchemas(files: Components): Components {
  const tenant = files['TenantDocument'] as JsonSchema;
  const provision = provisionBodySchema(tenant);
  const update = { ...mergePatchSchema(provision, files), description: 'A JSON merge patch (RFC 7386) of ProvisionBody: fields given replace, objects merge, `null` removes. The merged result must be a valid ProvisionBody.' };
  const issue = { type: 'object', required: ['file', 'line', 'column', 'path', 'message'], properties: { file: { type: 'string' }, line: { type: 'integer', description: '1-based; 0 when unknown' }, column: { type: 'integer' }, path: { type: 'string' }, message: { type: 'string' } } };
  return {
    Problem: {
      type: 'object',
      description: 'RFC 9457 problem details; `code` is stable (E_…), `requestId` names the request in the daemon\'s log',
      required: ['type', 'title', 'status', 'detail', 'code', 'requestId'],
      properties: {
        type: { type: 'string', format: 'uri' },
        title: { type: 'string' },
        status: { type: 'integer', minimum: 400, maximum: 599 },
        detail: { type: 'string' },
        code: { type: 'string', pattern: '^E_[A-Z0-9_]+$' },
        requestId: { type: 'string' },
        errors: { type: 'array', items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
    ProvisionBody: provision,
    UpdateBody: update,
    TenantSpec: subschema(tenant, '/properties/spec', 'TenantSpec'),
    Condition: subschema(files['TenantStatusFile'] as JsonSchema, '/properties/status/properties/conditions/items', 'Condition'),
    ValidationIssue: issue,
    TenantInfrastructure: {
      type: 'object',
      description: 'The seed entity — id, tenantId, status, cloudProvider, region, namespace, configuration, terraformStateKey — plus its reconcile state',
      required: ['id', 'tenantId', 'status', 'namespace', 'reconciled'],
      properties: {
        id: { type: ['string', 'null'], format: 'uuid', description: 'Assigned when the daemon first sees the tenant; null before' },
        tenantId: { type: 'string' },
        name: { type: ['string', 'null'] },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        status: { enum: [...STATUSES] },
        phase: { enum: [...PHASES, null] },
        cloudProvider: { type: ['string', 'null'] },
        region: { type: ['string', 'null'] },
        namespace: { type: 'string' },
        configuration: nullable(subschema(tenant, '/properties/spec/properties/configuration', 'TenantInfrastructure.configuration')),
        terraformStateKey: { type: ['string', 'null'], description: 'Where the tenant\'s infrastructure state is kept (a Pulumi stack, a rendered directory)' },
        conditions: { type: 'array', items: ref('Condition') },
        generation: { type: 'integer', minimum: 0, description: 'tenantd\'s count of spec changes of the tenant file (metadata.generation); a committed change not reconciled yet already counts' },
        observedGeneration: { type: 'integer', minimum: 0, description: 'The generation last reconciled to its end (Ready or Stalled); less than generation while in progress' },
        warnings: { type: 'array', items: ref('ValidationIssue'), description: 'Findings in the current file that do not stop it, e.g. a retired database size and its replacement' },
        desiredCommit: { type: ['string', 'null'], description: 'The newest commit of the tracked branch holding the current file' },
        desiredSpecDigest: { type: ['string', 'null'], description: 'The spec digest of the current file; null when it is invalid or removed' },
        observedCommit: { type: ['string', 'null'], description: 'The desired commit of observedGeneration (the same as status/<id>.yaml)' },
        observedSpecDigest: { type: ['string', 'null'] },
        appliedCommit: { type: ['string', 'null'], description: 'The commit last applied successfully' },
        appliedSpecDigest: { type: ['string', 'null'] },
        lastHandledReconcileAt: { type: ['string', 'null'], description: 'The requestedAt token of the newest POST …/reconcile a finished reconcile handled' },
        reconciled: { type: 'boolean', description: 'false while the current file has not been reconciled yet' },
        outputs: { type: 'object', additionalProperties: { type: 'string' }, description: 'Endpoints and names; never secrets' },
        retry: { type: ['object', 'null'], properties: { attempt: { type: 'integer' }, nextAttemptAt: { type: ['string', 'null'], format: 'date-time' }, lastError: { type: 'object' } } },
        lastPlan: { type: ['object', 'null'] },
        spec: nullable(ref('TenantSpec')),
        createdAt: { type: ['string', 'null'], format: 'date-time' },
        updatedAt: { type: ['string', 'null'], format: 'date-time' },
        lastTransitionTime: { type: ['string', 'null'], format: 'date-time', description: 'When the status or phase last changed' },
      },
    },
    TenantPage: {
      type: 'object',
      required: ['items', 'total', 'counts', 'next'],
      properties: {
        items: { type: 'array', items: ref('TenantInfrastructure') },
        total: { type: 'integer', description: 'tenants matching the filter' },
        counts: { type: 'object', description: 'tenants per status over the whole fleet', additionalProperties: { type: 'integer' } },
        next: { type: ['string', 'null'], description: 'URL of the next page' },
      },
    },
    TransitionPage: {
      type: 'object',
      required: ['items', 'total', 'offset', 'limit'],
      properties: { items: { type: 'array', items: ref('InfrastructureStateTransition') }, total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' } },
    },
    WriteResult: {
      type: 'object',
      required: ['requestId', 'commit', 'tenant'],
      properties: { requestId: { type: 'string' }, commit: { type: 'string', pattern: '^[0-9a-f]{40}$' }, tenant: nullable(ref('TenantInfrastructure')) },
    },
    DesiredInfrastructureState: {
      type: 'object',
      required: ['tenantId', 'file', 'commit', 'blobOid', 'specDigest', 'document', 'issues'],
      properties: {
        tenantId: { type: 'string' },
        file: { type: 'string' },
        commit: { type: 'string' },
        blobOid: { type: 'string' },
        specDigest: { type: ['string', 'null'], description: 'sha256: digest of the canonical document; null when the file is invalid' },
        document: nullable(ref('TenantDocument')),
        issues: { type: 'array', items: ref('ValidationIssue') },
        warnings: { type: 'array', items: ref('ValidationIssue'), description: 'Present when a valid file has findings worth acting on (a retired database size)' },
      },
    },
    ReconcileRequested: {
      type: 'object',
      required: ['requestId', 'tenantId', 'trigger', 'requestedAt'],
      properties: {
        requestId: { type: 'string' },
        tenantId: { type: 'string' },
        trigger: { type: 'string', description: 'The trigger the transitions of this reconcile will name' },
        requestedAt: { type: 'string', description: 'The token lastHandledReconcileAt shows once a reconcile has handled this request' },
      },
    },
    ReconcileRequest: {
      type: 'object',
      additionalProperties: false,
      properties: { requestedAt: { type: 'string', pattern: '^[\\x21-\\x7e]{1,64}$', description: 'A token (default: the time of the request, RFC 3339) that lastHandledReconcileAt shows once handled' } },
    },
    Readiness: {
      type: 'object',
      required: ['ready'],
      properties: {
        ready: { type: 'boolean' },
        role: {
          type: 'object',
          description: 'Under leader election (`--leader-elect`): whether this replica leads (reconciles and writes) or stands by (serves reads, forwards writes to `leader`)',
          required: ['role', 'identity', 'leader'],
          properties: { role: { enum: ['leader', 'standby'] }, identity: { type: 'string' }, leader: { type: ['string', 'null'], description: 'The holder of the Lease as this replica last saw it' } },
        },
        problem: { type: 'object', description: 'Why the repository cannot be acted on: the tracked branch is gone (E_GIT_BRANCH_MISSING), tenants/ is not a directory (E_REPO_LAYOUT), …', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
      },
    },
    DeletionHold: {
      type: 'object',
      description: 'Deprovisions the mass-deletion breaker holds until a person approves `commit` or the files come back',
      required: ['commit', 'previous', 'reasons', 'count', 'tenants', 'limit', 'fleet', 'since', 'message', 'approve'],
      properties: {
        commit: { type: 'string', pattern: '^[0-9a-f]{40}$', description: 'The commit the hold was raised or last grew at: the one to approve' },
        previous: { type: ['string', 'null'], description: 'The last commit acted on before it' },
        reasons: { type: 'array', items: { enum: ['threshold', 'emptyListing', 'nonFastForward'] } },
        count: { type: 'integer' },
        tenants: { type: 'array', items: { type: 'string' } },
        limit: { type: 'integer', description: 'Deletions one change may start without approval (--max-deletions)' },
        fleet: { type: 'integer', description: 'Tenants applied when the hold was raised' },
        since: { type: 'string', format: 'date-time' },
        message: { type: 'string' },
        approve: { type: 'object', required: ['commit', 'trailer'], properties: { commit: { type: 'string' }, trailer: { type: 'string', description: 'The commit trailer that approves it' } } },
      },
    },
    PlanApprovalRequest: { type: 'object', additionalProperties: false, required: ['planDigest'], properties: { planDigest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } } },
    PlanApproved: {
      type: 'object',
      required: ['requestId', 'tenantId', 'planDigest', 'operation', 'trigger'],
      properties: { requestId: { type: 'string' }, tenantId: { type: 'string' }, planDigest: { type: 'string' }, operation: { enum: ['create', 'update', 'delete'] }, trigger: { type: 'string', description: 'The trigger the applying transitions name' } },
    },
    DeletionHoldResult: { type: 'object', required: ['hold'], properties: { hold: nullable(ref('DeletionHold')) } },
    DeletionApproval: { type: 'object', additionalProperties: false, required: ['commit'], properties: { commit: { type: 'string', pattern: '^[0-9a-f]{40}$' } } },
    DeletionsApproved: {
      type: 'object',
      required: ['requestId', 'commit', 'approved', 'tenants', 'trigger'],
      properties: { requestId: { type: 'string' }, commit: { type: 'string' }, approved: { type: 'integer' }, tenants: { type: 'array', items: { type: 'string' } }, trigger: { type: 'string', description: 'The trigger the deprovisions\' transitions name' } },
    },
    WebhookResult: {
      type: 'object',
      required: ['status', 'deliveryId'],
      properties: { status: { enum: ['accepted', 'duplicate', 'pong', 'ignored'] }, deliveryId: { type: 'string' }, reason: { type: 'string' }, trigger: { type: 'string' } },
    },
  };
}

const sse = {
  description:
    'A text/event-stream: `retry:` then one message per ReconciliationEvent with `id:` (increasing; send it back as Last-Event-ID to resume), `event:` (the event type: ReconcileStarted, PhaseStarted, PhaseCompleted, PhaseFailed, StatusChanged, …) and `data:` (the event as JSON); `: keep-alive` comments every 15 s',
  content: { 'text/event-stream': { schema: { type: 'string' } } },
};

/** The OpenAPI 3.1 description of every route `createApp` serves (a test checks they match). */
export function openApiDocument(): Json {
  const files = schemaFileComponents();
  const paths = apiPaths();
  return {
    openapi: '3.1.0',
    info: {
      title: 'tenantd API',
      version: packageJson.version,
      description: 'Every write is a commit to the tenants repository, authored as the caller; the daemon reconciles it like any commit. Errors are RFC 9457 problem documents with a stable `code`.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/', description: 'The daemon serving this document' }],
    security: [{ bearer: [] }],
    tags: [
      { name: 'tenants', description: 'The seed\'s TenantInfrastructure routes: each write is a commit' },
      { name: 'deletions', description: 'The mass-deletion breaker: what it holds, and a person\'s approval' },
      { name: 'events', description: 'Live reconciliation events' },
      { name: 'webhooks', description: 'Git hosting webhooks that trigger a fetch' },
      { name: 'operations', description: 'Health, readiness, metrics and this document' },
    ],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A named API token (tdk_…) or a JWT' } },
      schemas: referencedComponents({ ...apiSchemas(files), ...files }, paths),
    },
    paths,
  };
}

function apiPaths(): Json {
  return {
    '/healthz': {
      get: { operationId: 'getHealth', tags: ['operations'], summary: 'Liveness', security: PUBLIC, responses: { '200': ok('The process is up', { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }), ...unexpected } },
    },
    '/readyz': {
      get: {
        operationId: 'getReadiness',
        tags: ['operations'],
        summary: 'Readiness: false while the repository cannot be reached or acted on (then `problem` says why)',
        security: PUBLIC,
        responses: { '200': ok('Ready', ref('Readiness')), '503': ok('Not ready', ref('Readiness')), ...unexpected },
      },
    },
    '/metrics': {
      get: { operationId: 'getMetrics', tags: ['operations'], summary: 'Prometheus metrics', security: PUBLIC, responses: { '200': { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } }, ...unexpected } },
    },
    '/openapi.json': {
      get: { operationId: 'getOpenApiDocument', tags: ['operations'], summary: 'This document', security: PUBLIC, responses: { '200': ok('OpenAPI 3.1', { type: 'object' }), ...unexpected } },
    },
    '/api/v1/infrastructure/tenants': {
      get: {
        operationId: 'listTenants',
        tags: ['tenants'],
        summary: 'List tenants',
        parameters: [
          { name: 'status', in: 'query', schema: { enum: [...STATUSES] } },
          { name: 'q', in: 'query', description: 'case-insensitive substring of the tenant id or name', schema: { type: 'string', maxLength: 128 } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
          { name: 'after', in: 'query', description: 'tenant id to continue after (from `next`)', schema: { type: 'string' } },
        ],
        responses: { '200': ok('A page of tenants', ref('TenantPage')), '400': problem('Unknown status or a bad limit (E_BAD_QUERY)'), ...authErrors, ...unexpected },
      },
    },
    '/api/v1/infrastructure/tenants/{tenantId}/provision': {
      post: {
        operationId: 'provisionTenant',
        tags: ['tenants'],
        summary: 'Provision a tenant: commits tenants/<tenantId>.yaml',
        parameters: [tenantIdParam, idempotencyKey],
        requestBody: { required: true, content: json(ref('ProvisionBody')) },
        responses: {
          '202': ok('Committed; the reconcile follows', ref('WriteResult'), writeHeaders),
          ...writeErrors,
          '409': problem('The tenant exists (E_TENANT_EXISTS; use PUT), or its Idempotency-Key is in progress'),
          ...authErrors,
          ...unexpected,
        },
      },
    },
    '/api/v1/infrastructure/tenants/{tenantId}': {
      get: {
        operationId: 'getTenant',
        tags: ['tenants'],
        summary: 'The tenant: its record and whether its current commit is reconciled',
        parameters: [tenantIdParam],
        responses: { '200': ok('The tenant', ref('TenantInfrastructure'), { ETag: header('The tenant file\'s blob id, for If-Match') }), '400': badTenantId, '404': problem('No such tenant'), ...authErrors, ...unexpected },
      },
      put: {
        operationId: 'updateTenant',
        tags: ['tenants'],
        summary: 'Change a tenant (JSON merge patch); the whole result is validated before the commit',
        parameters: [tenantIdParam, ifMatch, idempotencyKey],
        requestBody: { required: true, content: { ...json(ref('UpdateBody')), 'application/merge-patch+json': { schema: ref('UpdateBody') } } },
        responses: {
          '202': ok('Committed; the reconcile follows', ref('WriteResult'), writeHeaders),
          ...writeErrors,
          '404': problem('No such tenant'),
          '412': problem('If-Match does not match the current ETag'),
          ...authErrors,
          ...unexpected,
        },
      },
      delete: {
        operationId: 'deprovisionTenant',
        tags: ['tenants'],
        summary: 'Deprovision a tenant: commits the removal of its file (irreversible)',
        parameters: [tenantIdParam, { name: 'confirm', in: 'query', required: true, description: 'must equal the tenant id', schema: { type: 'string' } }, ifMatch, idempotencyKey],
        responses: {
          '202': ok('Committed; the deprovision follows', ref('WriteResult'), { Location: writeHeaders.Location }),
          '400': problem('Malformed tenant id, or confirm is not the tenant id (E_CONFIRMATION_REQUIRED)'),
          '404': problem('No such tenant'),
          '409': problem('deletionProtection is on (E_DELETION_PROTECTED), or the Idempotency-Key is in progress'),
          '412': problem('If-Match does not match the current ETag'),
          '422': problem('The Idempotency-Key was used with a different request'),
          ...authErrors,
          ...unexpected,
        },
      },
    },
    '/api/v1/infrastructure/tenants/{tenantId}/transitions': {
      get: {
        operationId: 'listTransitions',
        tags: ['tenants'],
        summary: 'The InfrastructureStateTransition history, oldest first',
        parameters: [tenantIdParam, { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 1000, default: 100 } }],
        responses: { '200': ok('A page of transitions', ref('TransitionPage')), '400': badTenantId, '404': problem('No such tenant'), ...authErrors, ...unexpected },
      },
    },
    '/api/v1/infrastructure/tenants/{tenantId}/desired': {
      get: {
        operationId: 'getDesiredState',
        tags: ['tenants'],
        summary: 'The DesiredInfrastructureState at the branch head (with its validation issues when the file is invalid)',
        parameters: [tenantIdParam],
        responses: { '200': ok('Desired state', ref('DesiredInfrastructureState')), '400': badTenantId, '404': problem('No file for this tenant on the branch'), ...authErrors, ...unexpected },
      },
    },
    '/api/v1/infrastructure/tenants/{tenantId}/reconcile': {
      post: {
        operationId: 'reconcileTenant',
        tags: ['tenants'],
        summary: 'Reconcile now (also a stalled or backing-off tenant); nothing is committed',
        parameters: [tenantIdParam],
        requestBody: { required: false, content: json(ref('ReconcileRequest')) },
        responses: {
          '202': ok('Queued', ref('ReconcileRequested')),
          '400': badTenantId,
          '404': problem('No such tenant'),
          '415': problem('A body that is not application/json'),
          '422': problem('A requestedAt that is not 1 to 64 printable characters, or another field (E_VALIDATION)'),
          ...authErrors,
          ...unexpected,
        },
      },
    },
    '/api/v1/infrastructure/tenants/{tenantId}/approve': {
      post: {
        operationId: 'approvePlan',
        tags: ['tenants'],
        summary: 'Approve the plan awaiting approval by its digest (lastPlan.digest); Apply follows only if the plan, made again, has the same digest. Needs tenants:delete for a deprovision; nothing is committed',
        parameters: [tenantIdParam, idempotencyKey],
        requestBody: { required: true, content: json(ref('PlanApprovalRequest')) },
        responses: {
          '202': ok('Approved; the tenant is reconciled now', ref('PlanApproved'), { Location: writeHeaders.Location }),
          '400': problem('Malformed tenant id, malformed JSON (E_BAD_JSON) or an Idempotency-Key longer than 255 characters'),
          '404': problem('No such tenant'),
          '409': problem('No plan awaits approval (E_NOT_AWAITING_APPROVAL), the digest is not the plan awaiting (E_PLAN_DIGEST_STALE), or the Idempotency-Key is in progress'),
          '413': writeErrors['413'],
          '415': writeErrors['415'],
          '422': problem('The body is not {"planDigest": "sha256:…"} (E_VALIDATION), or the Idempotency-Key was used with a different body'),
          ...authErrors,
          ...unexpected,
        },
      },
    },
    '/api/v1/deletions': {
      get: {
        operationId: 'getDeletionHold',
        tags: ['deletions'],
        summary: 'The mass-deletion hold: the tenants kept from being deprovisioned, why, and how to approve',
        responses: { '200': ok('The hold, or null when nothing is held', ref('DeletionHoldResult')), ...authErrors, ...unexpected },
      },
    },
    '/api/v1/deletions/approve': {
      post: {
        operationId: 'approveDeletions',
        tags: ['deletions'],
        summary: 'Approve the hold at exactly this commit (scope tenants:delete): its tenants are deprovisioned; nothing is committed',
        parameters: [idempotencyKey],
        requestBody: { required: true, content: json(ref('DeletionApproval')) },
        responses: {
          '202': ok('Approved; the deprovisions follow', ref('DeletionsApproved')),
          '400': problem('Malformed JSON (E_BAD_JSON) or an Idempotency-Key longer than 255 characters'),
          '409': problem('No deletion is held (E_NO_DELETION_HOLD), the hold is at another commit (E_DELETION_HOLD_CHANGED), or the Idempotency-Key is in progress'),
          '413': writeErrors['413'],
          '415': writeErrors['415'],
          '422': problem('The body is not {"commit": "<40 hex digits>"} (E_VALIDATION), or the Idempotency-Key was used with a different body'),
          ...authErrors,
          ...unexpected,
        },
      },
    },
    '/api/v1/events': {
      get: {
        operationId: 'streamEvents',
        tags: ['events'],
        summary: 'Server-sent events from the ReconciliationEventPublisher',
        parameters: [
          { name: 'tenant', in: 'query', description: 'only this tenant\'s events', schema: { type: 'string' } },
          { name: 'lastEventId', in: 'query', description: 'as Last-Event-ID, for clients that cannot set headers', schema: { type: 'string', pattern: '^\\d+$' } },
          { name: 'Last-Event-ID', in: 'header', description: 'resume after this event id (events still in the buffer are replayed)', schema: { type: 'string' } },
        ],
        responses: { '200': sse, ...authErrors, ...unexpected },
      },
    },
    '/api/v1/webhooks/{provider}': {
      post: {
        operationId: 'receiveWebhook',
        tags: ['webhooks'],
        summary: 'Git webhooks: github, gitlab, gitea, bitbucket, generic (HMAC-signed); authenticated by the signature, not a token',
        security: PUBLIC,
        parameters: [{ name: 'provider', in: 'path', required: true, schema: { enum: ['github', 'gitlab', 'gitea', 'bitbucket', 'generic'] } }],
        requestBody: { required: true, description: 'The provider\'s push or ping payload, verified against the raw bytes', content: { 'application/json': { schema: { type: 'object' } } } },
        responses: {
          '200': ok('Ping, duplicate delivery, or a push to another branch', ref('WebhookResult')),
          '202': ok('Push accepted: fetch and reconcile started', ref('WebhookResult')),
          '400': problem('Bad payload'),
          '401': problem('Missing or bad signature'),
          '404': problem('Unknown provider, or webhooks are not configured'),
          '413': problem('Body larger than the limit'),
          ...unexpected,
        },
      },
    },
  };
}
