import tenantSchema from '../schemas/tenant.schema.json' with { type: 'json' };
import transitionSchema from '../schemas/transition.schema.json' with { type: 'json' };
import statusSchema from '../schemas/status.schema.json' with { type: 'json' };

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ 'application/json': { schema } });
const problem = (description: string): Json => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const tenantIdParam = { name: 'tenantId', in: 'path', required: true, description: 'DNS-1123 label, at most 56 characters', schema: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 56 } };
const auth = [{ bearer: [] }];
const common = { '401': problem('Missing or invalid token'), '403': problem('Token lacks the scope'), '400': problem('Invalid tenant id or parameter') };
const writeHeaders = [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 }, description: 'A retried request with the same key returns the first answer and makes no second commit' }];

/** The request body is the tenant spec's fields at the top level, plus `name` and `labels` (the seed's shape). */
function provisionBodySchema(): Json {
  const spec = (tenantSchema.properties as Json)['spec'] as { properties: Json; required: string[] };
  const metadata = (tenantSchema.properties as Json)['metadata'] as { properties: Json };
  return {
    type: 'object',
    additionalProperties: false,
    required: spec.required,
    properties: { name: metadata.properties['name'], labels: metadata.properties['labels'], ...spec.properties },
    $defs: (tenantSchema as Json)['$defs'],
  };
}

/** The OpenAPI 3.1 description of every route `createApp` serves (a test checks they match). */
export function openApiDocument(): Json {
  const body = provisionBodySchema();
  const patch = { ...body, required: [] as string[], description: 'JSON merge patch (RFC 7386) of the provision body; null removes a field' };
  return {
    openapi: '3.1.0',
    info: { title: 'tenantd API', version: '1.0.0', description: 'Every write is a commit to the tenants repository, authored as the caller; the daemon reconciles it like any commit.' },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A named API token (tdk_…) or a JWT' } },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail', 'code', 'requestId'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { type: 'string' },
            requestId: { type: 'string' },
            errors: { type: 'array', items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } } },
          },
        },
        ProvisionBody: body,
        UpdateBody: patch,
        TenantInfrastructure: {
          type: 'object',
          description: 'The seed entity: id, tenantId, status, cloudProvider, region, namespace, configuration, terraformStateKey, plus reconcile state',
          required: ['tenantId', 'status', 'namespace', 'reconciled'],
          properties: {
            id: { type: ['string', 'null'] },
            tenantId: { type: 'string' },
            name: { type: ['string', 'null'] },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
            lastTransitionTime: { type: ['string', 'null'] },
            status: { enum: ['PENDING', 'PROVISIONING', 'ACTIVE', 'UPDATING', 'DEPROVISIONING', 'DEPROVISIONED', 'FAILED', 'SUSPENDED', 'INVALID'] },
            phase: { type: ['string', 'null'] },
            cloudProvider: { type: ['string', 'null'] },
            region: { type: ['string', 'null'] },
            namespace: { type: 'string' },
            configuration: { type: ['object', 'null'] },
            terraformStateKey: { type: ['string', 'null'] },
            conditions: { type: 'array', items: { type: 'object' } },
            desiredCommit: { type: ['string', 'null'] },
            observedCommit: { type: ['string', 'null'] },
            appliedCommit: { type: ['string', 'null'] },
            reconciled: { type: 'boolean', description: 'false while the current file has not been reconciled yet' },
            outputs: { type: 'object', additionalProperties: { type: 'string' } },
            retry: { type: ['object', 'null'] },
            lastPlan: { type: ['object', 'null'] },
            spec: { type: ['object', 'null'] },
            createdAt: { type: ['string', 'null'] },
            updatedAt: { type: ['string', 'null'] },
          },
        },
        WriteResult: { type: 'object', required: ['requestId', 'commit'], properties: { requestId: { type: 'string' }, commit: { type: 'string' }, tenant: ref('TenantInfrastructure') } },
        InfrastructureStateTransition: transitionSchema,
        TenantStatusFile: statusSchema,
        TenantDocument: tenantSchema,
      },
    },
    paths: {
      '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'The process is up' } } } },
      '/readyz': { get: { summary: 'Readiness: false while the repository cannot be reached', responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text/plain exposition format' } } } },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
      '/api/v1/infrastructure/tenants': {
        get: {
          summary: 'List tenants',
          security: auth,
          parameters: [
            { name: 'status', in: 'query', schema: { type: 'string' } },
            { name: 'q', in: 'query', description: 'case-insensitive substring of the tenant id or name', schema: { type: 'string', maxLength: 128 } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
            { name: 'after', in: 'query', description: 'tenant id to continue after (from `next`)', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'A page of tenants', content: json({ type: 'object', properties: { items: { type: 'array', items: ref('TenantInfrastructure') }, total: { type: 'integer' }, counts: { type: 'object', description: 'tenants per status over the whole fleet', additionalProperties: { type: 'integer' } }, next: { type: ['string', 'null'] } } }) }, ...common },
        },
      },
      '/api/v1/infrastructure/tenants/{tenantId}/provision': {
        post: {
          summary: 'Provision a tenant: commits tenants/<tenantId>.yaml',
          security: auth,
          parameters: [tenantIdParam, ...writeHeaders],
          requestBody: { required: true, content: json(ref('ProvisionBody')) },
          responses: {
            '202': { description: 'Committed; reconcile follows', headers: { Location: { schema: { type: 'string' } }, ETag: { schema: { type: 'string' } } }, content: json(ref('WriteResult')) },
            '409': problem('The tenant exists'),
            '413': problem('Body too large'),
            '415': problem('Not application/json'),
            '422': problem('Invalid tenant'),
            ...common,
          },
        },
      },
      '/api/v1/infrastructure/tenants/{tenantId}': {
        get: {
          summary: 'The tenant: its record and whether its current commit is reconciled',
          security: auth,
          parameters: [tenantIdParam],
          responses: { '200': { description: 'The tenant', headers: { ETag: { schema: { type: 'string' } } }, content: json(ref('TenantInfrastructure')) }, '404': problem('No such tenant'), ...common },
        },
        put: {
          summary: 'Change a tenant (JSON merge patch); the whole result is validated before the commit',
          security: auth,
          parameters: [tenantIdParam, { name: 'If-Match', in: 'header', schema: { type: 'string' }, description: 'The ETag from GET; 412 when stale' }, ...writeHeaders],
          requestBody: { required: true, content: { ...json(ref('UpdateBody')), 'application/merge-patch+json': { schema: ref('UpdateBody') } } },
          responses: { '202': { description: 'Committed', content: json(ref('WriteResult')) }, '404': problem('No such tenant'), '412': problem('Stale ETag'), '413': problem('Body too large'), '415': problem('Wrong media type'), '422': problem('Invalid result'), ...common },
        },
        delete: {
          summary: 'Deprovision a tenant: commits the removal of its file (irreversible)',
          security: auth,
          parameters: [tenantIdParam, { name: 'confirm', in: 'query', required: true, description: 'must equal the tenant id', schema: { type: 'string' } }, { name: 'If-Match', in: 'header', schema: { type: 'string' } }, ...writeHeaders],
          responses: { '202': { description: 'Committed', content: json(ref('WriteResult')) }, '404': problem('No such tenant'), '409': problem('deletionProtection is on'), '412': problem('Stale ETag'), ...common },
        },
      },
      '/api/v1/infrastructure/tenants/{tenantId}/transitions': {
        get: {
          summary: 'The InfrastructureStateTransition history, oldest first',
          security: auth,
          parameters: [tenantIdParam, { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0 } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 1000, default: 100 } }],
          responses: { '200': { description: 'A page of transitions', content: json({ type: 'object', properties: { items: { type: 'array', items: ref('InfrastructureStateTransition') }, total: { type: 'integer' } } }) }, '404': problem('No such tenant'), ...common },
        },
      },
      '/api/v1/infrastructure/tenants/{tenantId}/desired': {
        get: { summary: 'The DesiredInfrastructureState at the branch head', security: auth, parameters: [tenantIdParam], responses: { '200': { description: 'Desired state', content: json({ type: 'object' }) }, '404': problem('No file'), ...common } },
      },
      '/api/v1/infrastructure/tenants/{tenantId}/reconcile': {
        post: { summary: 'Reconcile now (also a stalled or backing-off tenant)', security: auth, parameters: [tenantIdParam], responses: { '202': { description: 'Queued' }, '404': problem('No such tenant'), ...common } },
      },
      '/api/v1/events': {
        get: {
          summary: 'Server-sent events from the ReconciliationEventPublisher',
          security: auth,
          parameters: [{ name: 'tenant', in: 'query', schema: { type: 'string' } }, { name: 'Last-Event-ID', in: 'header', schema: { type: 'string' } }],
          responses: { '200': { description: 'text/event-stream' }, ...common },
        },
      },
      '/api/v1/webhooks/{provider}': {
        post: {
          summary: 'Git webhooks: github, gitlab, gitea, bitbucket, generic (HMAC-signed)',
          parameters: [{ name: 'provider', in: 'path', required: true, schema: { enum: ['github', 'gitlab', 'gitea', 'bitbucket', 'generic'] } }],
          responses: { '200': { description: 'Ping, duplicate delivery or another branch' }, '202': { description: 'Push accepted: fetch and reconcile started' }, '401': problem('Bad signature'), '400': problem('Bad payload'), '404': problem('Unknown provider') },
        },
      },
    },
  };
}
