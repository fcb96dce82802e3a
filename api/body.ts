import type { IncomingMessage } from 'node:http';
import getRawBody from 'raw-body';
import { apiError } from './problem.js';

export const DEFAULT_BODY_LIMIT = 64 * 1024;

/**
 * Reads a request body as bytes, refusing more than `limit` (413) — before buffering it, when
 * Content-Length says so. Hostile until validated: nothing is parsed here.
 */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw apiError('E_BODY_TOO_LARGE', `the body is ${declared} bytes; the limit is ${limit}`, { limit });
  }
  try {
    return await getRawBody(req, { limit });
  } catch (err: unknown) {
    if ((err as { type?: string }).type === 'entity.too.large') {
      throw apiError('E_BODY_TOO_LARGE', `the body is larger than ${limit} bytes`, { limit });
    }
    throw apiError('E_BAD_REQUEST', 'the request body could not be read', {});
  }
}
