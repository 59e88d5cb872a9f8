import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { DfsError, BadRequestError } from '../lib/errors';
import type { DirectResult, ErrorBody } from '../lib/types';

export const logger = new Logger({ serviceName: 's3-dfs' });

/** A request as the routes see it, whether it came through API Gateway or a direct invoke. */
export interface ApiRequest {
  method: string;
  /** Decoded path, e.g. `/files/a b+c.txt`. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface ApiResponse {
  statusCode: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type Route<D> = (req: ApiRequest, deps: D) => Promise<ApiResponse>;

export const ok = (body: unknown, statusCode = 200): ApiResponse => ({ statusCode, body });

/**
 * The one place errors become HTTP. A DfsError below 500 is the client's to see; anything
 * else is logged in full and answered with a bare `Internal`, so no stack or bucket name leaks.
 */
export function errorResponse(err: unknown): ApiResponse {
  if (err instanceof DfsError) {
    const body: ErrorBody & Record<string, unknown> = { error: err.code, message: err.message };
    if ('unavailable' in err) body.unavailable = err.unavailable;
    if ('newer' in err) body.newer = err.newer;
    if (err.status >= 500) logger.warn('request failed', { error: err });
    return { statusCode: err.status, body };
  }
  logger.error('unhandled error', { error: err as Error });
  return { statusCode: 500, body: { error: 'Internal' } };
}

function fromApiGateway(event: APIGatewayProxyEventV2): ApiRequest {
  let path: string;
  try {
    path = decodeURIComponent(event.rawPath);
  } catch {
    throw new BadRequestError('the path is not valid percent-encoding');
  }
  const body = event.body === undefined || event.body === null
    ? undefined
    : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) if (v !== undefined) query[k] = v;
  return { method: event.requestContext.http.method.toUpperCase(), path, query, headers, ...(body ? { body } : {}) };
}

function isApiGatewayEvent(event: unknown): event is APIGatewayProxyEventV2 {
  return typeof event === 'object' && event !== null && 'requestContext' in event && 'rawPath' in event;
}

/**
 * Wraps a route so it serves both API Gateway (HTTP API, payload 2.0) and direct invocations.
 * A direct event is turned into an ApiRequest by `fromDirect` so both paths share every check.
 * Authentication will go here, before `route` runs.
 */
export function http<D>(
  route: Route<D>,
  getDeps: () => D,
  fromDirect: (event: unknown) => ApiRequest,
) {
  async function run(req: () => ApiRequest): Promise<ApiResponse> {
    try {
      return await route(req(), getDeps());
    } catch (err) {
      return errorResponse(err);
    }
  }
  return async (event: unknown): Promise<APIGatewayProxyStructuredResultV2 | DirectResult> => {
    if (!isApiGatewayEvent(event)) {
      const res = await run(() => fromDirect(event));
      return { statusCode: res.statusCode, body: res.body };
    }
    const res = await run(() => fromApiGateway(event));
    return {
      statusCode: res.statusCode,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...res.headers },
      body: JSON.stringify(res.body),
    };
  };
}
