/**
 * The API's operations and the HTTP request of each, for every client: `dfs` (both of its
 * transports) and the web page. No Node or DOM APIs, so esbuild bundles it for either.
 */
import type { PlanEntry, UploadTarget } from '../lib/types';
import { encodeKeyPath } from '../lib/keys';

/** A part of a multipart upload as POST /uploads/complete takes it. */
export interface DonePart {
  n: number;
  etag: string;
}

/** One API operation; `routeOf` gives its HTTP request. */
export type ApiOp =
  | { op: 'get'; key: string; meta?: boolean }
  | { op: 'list'; prefix?: string; after?: string; limit?: number }
  | { op: 'put'; key: string; to: string; mtime: number; body: Uint8Array; touch?: boolean }
  | { op: 'delete'; key: string }
  | { op: 'startUpload'; key: string; size: number; mtime: number; to: string; touch?: boolean }
  | { op: 'signParts'; key: string; uploads: UploadTarget[]; parts: number[] }
  | { op: 'completeUpload'; key: string; uploads: Array<UploadTarget & { parts: DonePart[] }> }
  | { op: 'abortUpload'; key: string; uploads: UploadTarget[] }
  | { op: 'reconcile'; dryRun: boolean; force: boolean }
  | { op: 'replayFailures' }
  | { op: 'applyPlan'; entries: PlanEntry[]; force?: boolean }
  | { op: 'events'; after?: string }
  | { op: 'createToken'; name: string; scope: 'read' | 'write' }
  | { op: 'listTokens' }
  | { op: 'revokeToken'; name: string }
  | { op: 'lock'; key: string; store?: string; reason?: string; ttl?: number }
  | { op: 'unlock'; key: string; store?: string; force?: boolean; discard?: boolean }
  | { op: 'locks' };

/** An answer as a client sees it: the status, and the body parsed from JSON. */
export interface ApiResult {
  status: number;
  body: unknown;
}

/** Sends operations to the API; a client's transport (HTTPS, a Lambda invoke, the page's fetch). */
export interface ApiSender<Op extends { op: string } = ApiOp> {
  /** `signal` cancels the request; the promise then rejects with the transport's own error. */
  send(op: Op, opts?: { signal?: AbortSignal }): Promise<ApiResult>;
}

/** The HTTP request of an operation: `path` carries the query; `body` is sent as it is. */
export interface Route {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

const JSON_HEADERS = Object.freeze({ 'content-type': 'application/json' });
const jsonRoute = (method: string, path: string, value: unknown): Route => ({
  method,
  path,
  headers: { ...JSON_HEADERS },
  body: new TextEncoder().encode(JSON.stringify(value)),
});

/** The HTTP request of each operation. */
export function routeOf(op: ApiOp): Route {
  switch (op.op) {
    case 'get':
      return { method: 'GET', path: `/files/${encodeKeyPath(op.key)}${op.meta ? '?meta=1' : ''}` };
    case 'list':
      return { method: 'GET', path: withQuery('/files', { prefix: op.prefix, after: op.after, limit: op.limit }) };
    case 'put':
      return {
        method: 'PUT',
        path: withQuery(`/files/${encodeKeyPath(op.key)}`, { to: op.to, touch: op.touch ? 1 : undefined }),
        headers: { 'content-type': 'application/octet-stream', 'x-dfs-mtime': String(Math.trunc(op.mtime)) },
        body: op.body,
      };
    case 'delete':
      return { method: 'DELETE', path: `/files/${encodeKeyPath(op.key)}` };
    case 'startUpload':
      return jsonRoute('POST', '/uploads', { key: op.key, size: op.size, mtime: Math.trunc(op.mtime), to: op.to, ...(op.touch ? { touch: true } : {}) });
    case 'signParts':
      return jsonRoute('POST', '/uploads/sign', { key: op.key, uploads: op.uploads, parts: op.parts });
    case 'completeUpload':
      return jsonRoute('POST', '/uploads/complete', { key: op.key, uploads: op.uploads });
    case 'abortUpload':
      return jsonRoute('POST', '/uploads/abort', { key: op.key, uploads: op.uploads });
    case 'reconcile':
      return { method: 'POST', path: withQuery('/reconcile', { dryRun: op.dryRun ? 1 : undefined, force: op.force ? 1 : undefined }) };
    case 'replayFailures':
      return { method: 'POST', path: '/reconcile/replay' };
    case 'applyPlan':
      return jsonRoute('POST', withQuery('/reconcile/apply', { force: op.force ? 1 : undefined }), { entries: op.entries });
    case 'events':
      return { method: 'GET', path: withQuery('/events', { after: op.after }) };
    case 'createToken':
      return jsonRoute('POST', '/tokens', { name: op.name, scope: op.scope });
    case 'listTokens':
      return { method: 'GET', path: '/tokens' };
    case 'revokeToken':
      return { method: 'DELETE', path: `/tokens/${encodeURIComponent(op.name)}` };
    case 'lock':
      return jsonRoute('POST', withQuery(`/locks/${encodeKeyPath(op.key)}`, { store: op.store }), {
        ...(op.reason !== undefined ? { reason: op.reason } : {}),
        ...(op.ttl !== undefined ? { ttl: op.ttl } : {}),
      });
    case 'unlock':
      return {
        method: 'DELETE',
        path: withQuery(`/locks/${encodeKeyPath(op.key)}`, { store: op.store, force: op.force ? 1 : undefined, discard: op.discard ? 1 : undefined }),
      };
    case 'locks':
      return { method: 'GET', path: '/locks' };
    default:
      return unreachable(op);
  }
}

function withQuery(path: string, params: Record<string, string | number | undefined>): string {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) query.set(k, String(v));
  const q = query.toString();
  return q ? `${path}?${q}` : path;
}

function unreachable(op: never): never {
  throw new Error(`no HTTP route for op ${JSON.stringify((op as { op: unknown }).op)}`);
}
