import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { AllStoresUnavailableError, DfsError, BadRequestError, RouteNotFoundError, ServiceUnavailableError, StoreUnavailableError } from '../lib/errors';
import { authenticate, authorize, type Identity, type Scope } from '../lib/tokens';
import type { ControlBucket } from '../lib/control';
import type { DirectResult, ErrorBody } from '../lib/types';

export const logger = new Logger({ serviceName: 's3-dfs' });

/** A request as the routes see it, whether it came through API Gateway or a direct invoke. */
export interface ApiRequest {
  method: string;
  /** Decoded path, e.g. `/files/a b+c.txt`. */
  path: string;
  query: Record<string, string>;
  /** Lower-case names. */
  headers: Record<string, string>;
  body?: Buffer;
}

/** A request that passed authentication: who it is from. */
export interface AuthedRequest extends ApiRequest {
  who: Identity;
}

export interface ApiResponse {
  statusCode: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** What a route needs and does: `public` routes (the web page's own files) need no token. */
export interface RouteSpec<D> {
  scope: Scope | 'public' | ((req: ApiRequest) => Scope);
  handle: (req: AuthedRequest, deps: D) => Promise<ApiResponse>;
}

/** The route of a request, or undefined when there is none. */
export type Router<D> = (req: ApiRequest) => RouteSpec<D> | undefined;

export const ok = (body: unknown, statusCode = 200): ApiResponse => ({ statusCode, body });

/** A body sent as it is rather than as JSON: the web page's own files (HTML, JS, CSS). */
export class RawBody {
  constructor(
    readonly text: string,
    /** `text` is base64 of the bytes (gzip), which API Gateway decodes before sending. */
    readonly base64: boolean,
  ) {}
}

/** A 200 with a raw body; `headers` carry its content type and caching. */
export const raw = (body: string, base64: boolean, headers: Record<string, string>): ApiResponse => ({ statusCode: 200, body: new RawBody(body, base64), headers });

/**
 * Who a direct invoke is from. Invoking the function directly (`sls invoke`, `dfs --via lambda`)
 * takes `lambda:InvokeFunction`, which IAM grants only to the stack's operators: such a call is
 * theirs, with write scope. API Gateway never sends this shape (its events carry
 * `requestContext`), so no HTTP request can pass for one.
 */
export const DIRECT_INVOKE: Identity = Object.freeze({ name: 'lambda-invoke', scope: 'write' });

/** Who a public route's request is from: nobody in particular. */
const ANONYMOUS: Identity = Object.freeze({ name: 'anonymous', scope: 'read' });

/**
 * The one place errors become HTTP. A DfsError below 500 is the client's to see; anything
 * else is logged in full and answered with a bare `Internal`, so no stack or bucket name leaks.
 */
export function errorResponse(err: unknown): ApiResponse {
  // The control bucket (tokens, tombstones) not answering: the request can be tried again.
  if (err instanceof StoreUnavailableError) {
    return errorResponse(err.store === 'control' ? new ServiceUnavailableError('control bucket', { cause: err }) : new AllStoresUnavailableError([err.store]));
  }
  if (err instanceof DfsError) {
    const body: ErrorBody & Record<string, unknown> = { error: err.code, message: err.message };
    if ('unavailable' in err) body.unavailable = err.unavailable;
    if ('newer' in err) body.newer = err.newer;
    if ('holder' in err && 'since' in err) Object.assign(body, { holder: err.holder, since: err.since });
    if (err.status >= 500) logger.warn('request failed', { error: err });
    return { statusCode: err.status, body, ...(err.status === 401 ? { headers: { 'www-authenticate': 'Bearer' } } : {}) };
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
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) if (v !== undefined) query[k] = v;
  const method = event.requestContext?.http?.method;
  if (typeof method !== 'string') throw new BadRequestError('the event has no requestContext.http.method');
  if (event.isBase64Encoded !== true && event.body?.includes('\uFFFD')) {
    // API Gateway passes text media types as strings, replacing bytes that are not UTF-8 with
    // U+FFFD: what was sent is gone, so storing or parsing the rest would be a guess.
    throw new BadRequestError(
      'the body came as text holding U+FFFD, the mark of bytes that were not UTF-8; send the bytes as Content-Type: application/octet-stream',
    );
  }
  return { method: method.toUpperCase(), path, query, headers, ...bodyOf(event.body, event.isBase64Encoded) };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A request body as bytes; base64 that is not base64 is refused rather than stored as garbage. */
function bodyOf(body: unknown, base64: unknown): { body?: Buffer } {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'string') throw new BadRequestError('the body must be a string');
  if (base64 !== true) return { body: Buffer.from(body, 'utf8') };
  if (body.length % 4 !== 0 || !BASE64.test(body)) throw new BadRequestError('the body says it is base64 but is not');
  return { body: Buffer.from(body, 'base64') };
}

function isApiGatewayEvent(event: unknown): event is APIGatewayProxyEventV2 {
  return typeof event === 'object' && event !== null && 'requestContext' in event && 'rawPath' in event;
}

const strings = (v: unknown, what: string): Record<string, string> => {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new BadRequestError(`"${what}" must be an object of strings`);
  }
  return v as Record<string, string>;
};

/**
 * A direct invoke's event, in the shape of the request it stands for:
 * `{"method":"GET","path":"/files/fileB.txt","query":{…},"headers":{…},"body":"…"|{…},"isBase64Encoded":false}`.
 * One translation for every route: no per-route mirror to keep in step.
 */
export function fromDirect(event: unknown): ApiRequest {
  const e = (typeof event === 'string' ? parseJson(event) : event) as Record<string, unknown> | null;
  if (!e || typeof e !== 'object' || Array.isArray(e)) throw new BadRequestError('a direct invocation needs a JSON object like {"method":"GET","path":"/files/fileA.txt"}');
  if (typeof e.method !== 'string' || !/^[A-Za-z]{1,10}$/.test(e.method)) throw new BadRequestError('"method" must be an HTTP method, e.g. "GET"');
  if (typeof e.path !== 'string' || !e.path.startsWith('/')) throw new BadRequestError('"path" must be the request path, e.g. "/files/fileA.txt"');
  const headers = Object.fromEntries(Object.entries(strings(e.headers, 'headers')).map(([k, v]) => [k.toLowerCase(), v]));
  const body = e.body !== undefined && typeof e.body === 'object' ? JSON.stringify(e.body) : e.body;
  return { method: e.method.toUpperCase(), path: e.path, query: strings(e.query, 'query'), headers, ...bodyOf(body, e.isBase64Encoded) };
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    throw new BadRequestError('the event is not valid JSON');
  }
}

/**
 * Wraps a router so it serves both API Gateway (HTTP API, payload 2.0) and direct invokes, with
 * the same checks on both. A request through API Gateway needs a bearer token of the route's
 * scope (401 without a valid one, 403 for a read token on a write route), except on public
 * routes; a direct invoke is DIRECT_INVOKE's. Unknown routes answer 404 NoRoute, after the
 * token check, so they tell nothing to a caller without one.
 */
export function http<D extends { control: ControlBucket }>(router: Router<D>, getDeps: () => D) {
  async function run(parse: () => ApiRequest, direct: boolean): Promise<ApiResponse> {
    try {
      const req = parse();
      const spec = router(req);
      const deps = getDeps();
      const who = direct ? DIRECT_INVOKE : spec?.scope === 'public' ? ANONYMOUS : await authenticate(deps, req.headers.authorization);
      if (!spec) throw new RouteNotFoundError(`no route for ${req.method} ${req.path}`);
      if (spec.scope !== 'public') authorize(who, typeof spec.scope === 'function' ? spec.scope(req) : spec.scope);
      return await spec.handle({ ...req, who }, deps);
    } catch (err) {
      return errorResponse(err);
    }
  }
  return async (event: unknown): Promise<APIGatewayProxyStructuredResultV2 | DirectResult> => {
    if (!isApiGatewayEvent(event)) {
      const res = await run(() => fromDirect(event), true);
      return { statusCode: res.statusCode, body: res.body instanceof RawBody ? res.body.text : res.body };
    }
    return toApiGateway(await run(() => fromApiGateway(event), false));
  };
}

/** Every answer, error or not, leaves here: JSON unless the route made a raw body. */
function toApiGateway(res: ApiResponse): APIGatewayProxyStructuredResultV2 {
  if (res.body instanceof RawBody) {
    return { statusCode: res.statusCode, headers: { ...res.headers }, body: res.body.text, isBase64Encoded: res.body.base64 };
  }
  return {
    statusCode: res.statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...res.headers },
    body: JSON.stringify(res.body),
  };
}
