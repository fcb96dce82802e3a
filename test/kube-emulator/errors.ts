/** Kubernetes `Status` failures, shaped as the API server sends them (k8s.io/apimachinery errors.go). */
import type { JsonObject } from './json.js';
import { type KindInfo, qualifiedKind, qualifiedResource } from './kinds.js';

export interface StatusCause {
  type?: string;
  reason?: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export const REASON_BY_CODE: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  409: 'Conflict',
  410: 'Expired',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export class KubeStatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'KubeStatusError';
  }

  toStatus(): JsonObject {
    return failureStatus(this.code, this.reason, this.message, this.details);
  }
}

export function failureStatus(code: number, reason: string, message: string, details?: StatusDetails): JsonObject {
  const body: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason };
  if (details) body.details = JSON.parse(JSON.stringify(details)) as JsonObject;
  body.code = code;
  return body;
}

function resourceDetails(info: KindInfo, name: string): StatusDetails {
  return info.group ? { name, group: info.group, kind: info.plural } : { name, kind: info.plural };
}

export function notFound(info: KindInfo, name: string): KubeStatusError {
  return new KubeStatusError(404, 'NotFound', `${qualifiedResource(info)} "${name}" not found`, resourceDetails(info, name));
}

export function alreadyExists(info: KindInfo, name: string): KubeStatusError {
  return new KubeStatusError(
    409,
    'AlreadyExists',
    `${qualifiedResource(info)} "${name}" already exists`,
    resourceDetails(info, name),
  );
}

/** Optimistic-concurrency failure: the resourceVersion sent is not the stored one. */
export function conflict(info: KindInfo, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): KubeStatusError {
  return new KubeStatusError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(info)} "${name}": ${why}`,
    resourceDetails(info, name),
  );
}

export interface FieldError {
  field: string;
  /** FieldValueRequired, FieldValueInvalid, FieldValueForbidden, FieldValueNotSupported, FieldValueDuplicate, FieldValueTooLong */
  type: string;
  /** The text after "field: ", e.g. `Required value` or `Invalid value: "x": must be ...`. */
  detail: string;
}

export function invalid(info: KindInfo, name: string, errors: FieldError[]): KubeStatusError {
  const parts = errors.map((e) => `${e.field}: ${e.detail}`);
  const summary = parts.length === 1 ? (parts[0] ?? '') : `[${parts.join(', ')}]`;
  const details: StatusDetails = {
    name,
    ...(info.group ? { group: info.group } : {}),
    kind: info.kind,
    causes: errors.map((e) => ({ reason: e.type, message: e.detail, field: e.field })),
  };
  return new KubeStatusError(422, 'Invalid', `${qualifiedKind(info)} "${name}" is invalid: ${summary}`, details);
}

export function badRequest(message: string): KubeStatusError {
  return new KubeStatusError(400, 'BadRequest', message);
}

export function forbidden(info: KindInfo, name: string, why: string, causes?: StatusCause[]): KubeStatusError {
  return new KubeStatusError(403, 'Forbidden', `${qualifiedResource(info)} "${name}" is forbidden: ${why}`, {
    ...resourceDetails(info, name),
    ...(causes ? { causes } : {}),
  });
}

export function resourceNotFound(): KubeStatusError {
  return new KubeStatusError(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function methodNotAllowed(): KubeStatusError {
  return new KubeStatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});
}

export function unsupportedMediaType(contentType: string): KubeStatusError {
  return new KubeStatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${contentType || 'none'})`);
}

/** A Status for an arbitrary code, used by fault injection and unreachable mode. */
export function statusForCode(code: number, message?: string): KubeStatusError {
  const reason = REASON_BY_CODE[code] ?? (code >= 500 ? 'InternalError' : 'BadRequest');
  const details: StatusDetails | undefined =
    code === 429 || code === 503 ? { retryAfterSeconds: 1 } : code === 500 ? { causes: [{ message: message ?? 'injected failure' }] } : undefined;
  return new KubeStatusError(code, reason, message ?? defaultMessage(code), details);
}

function defaultMessage(code: number): string {
  switch (code) {
    case 409:
      return 'Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again';
    case 429:
      return 'the server has received too many requests and has asked us to try again later';
    case 500:
      return 'an error on the server ("injected failure") has prevented the request from succeeding';
    case 503:
      return 'the server is currently unable to handle the request';
    case 504:
      return 'the server was unable to return a response in the time allotted, but may still be processing the request';
    default:
      return `injected ${REASON_BY_CODE[code] ?? 'failure'}`;
  }
}
