import { http, ok, type ApiRequest, type ApiResponse } from './http';
import { getDeps } from './deps';
import { BadRequestError, PayloadTooLargeError, RouteNotFoundError } from '../lib/errors';
import { parseKey } from '../lib/keys';
import { readFile } from '../lib/read';
import { listFiles } from '../lib/listing';
import { abortUpload, completeUpload, putFile, signParts, startUpload } from '../lib/upload';
import { deleteFile } from '../lib/delete';
import { applyEntries, reconcile } from '../lib/sync';
import { readEvents } from '../lib/journal';
import { replayFailures } from '../lib/failures';
import type { Deps } from '../lib/deps';
import type { WriteAnswer } from '../lib/types';

const FILES = '/files/';
/** Replaying failed events in a request leaves the rest of API Gateway's 29 s to the request itself. */
const REPLAY_BUDGET_MS = 10_000;
const MAX_JSON_BYTES = 1024 * 1024;

const flag = (v: string | undefined) => v === '1' || v === 'true';

/** Who the request is for: recorded in stamps, tombstones and the journal. */
const whoOf = (req: ApiRequest) => req.headers['x-dfs-user'] || 'api';

function intParam(v: string | undefined, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new BadRequestError(`${name} must be a whole number`);
  return Number(v);
}

function jsonBody(req: ApiRequest): unknown {
  if (!req.body || req.body.length === 0) throw new BadRequestError('a JSON body is required');
  if (req.body.length > MAX_JSON_BYTES) throw new PayloadTooLargeError(`JSON bodies are limited to ${MAX_JSON_BYTES} bytes`);
  try {
    return JSON.parse(req.body.toString('utf8'));
  } catch {
    throw new BadRequestError('the body is not valid JSON');
  }
}

/** 200 when every store took the write, 207 when some did, 503 when none did. */
function written(answer: WriteAnswer): ApiResponse {
  const done = answer.results.filter((r) => r.ok).length;
  return ok(answer, done === answer.results.length ? 200 : done > 0 ? 207 : 503);
}

type Handler = (req: ApiRequest, deps: Deps, key: string) => Promise<ApiResponse>;

/** `files/` routes take the key from the rest of the path; the others match exactly. */
const fileRoutes: Record<string, Handler> = {
  GET: async (req, deps, key) => {
    const answer = await readFile(deps, key, { meta: flag(req.query.meta) });
    return ok(answer, answer.status === 'NOT_FOUND' ? 404 : 200);
  },
  PUT: async (req, deps, key) =>
    written(
      await putFile(deps, {
        key,
        body: req.body ?? Buffer.alloc(0),
        to: req.query.to,
        mtime: req.headers['x-dfs-mtime'],
        touch: flag(req.query.touch),
        who: whoOf(req),
      }),
    ),
  DELETE: async (req, deps, key) => written(await deleteFile(deps, key, whoOf(req))),
};

const exactRoutes: Record<string, (req: ApiRequest, deps: Deps) => Promise<ApiResponse>> = {
  'GET /files': async (req, deps) =>
    ok(await listFiles(deps, { prefix: req.query.prefix, after: req.query.after, limit: intParam(req.query.limit, 'limit') })),
  'POST /uploads': async (req, deps) => ok(await startUpload(deps, jsonBody(req), whoOf(req))),
  'POST /uploads/sign': async (req, deps) => ok(await signParts(deps, jsonBody(req))),
  'POST /uploads/complete': async (req, deps) => written(await completeUpload(deps, jsonBody(req))),
  'POST /uploads/abort': async (req, deps) => written(await abortUpload(deps, jsonBody(req))),
  'POST /reconcile': async (req, deps) =>
    ok(await reconcile(deps, { dryRun: flag(req.query.dryRun), force: flag(req.query.force), replayBudgetMs: REPLAY_BUDGET_MS })),
  'POST /reconcile/replay': async (_req, deps) => ok(await replayFailures(deps, REPLAY_BUDGET_MS)),
  'POST /reconcile/apply': async (req, deps) => ok(await applyEntries(deps, jsonBody(req), { force: flag(req.query.force) })),
  'GET /events': async (req, deps) => ok(await readEvents(deps, req.query.after)),
};

async function route(req: ApiRequest, deps: Deps): Promise<ApiResponse> {
  const exact = exactRoutes[`${req.method} ${req.path}`];
  if (exact) return exact(req, deps);
  const byMethod = req.path.startsWith(FILES) ? fileRoutes[req.method] : undefined;
  if (byMethod) return byMethod(req, deps, parseKey(req.path.slice(FILES.length)));
  throw new RouteNotFoundError(`no route for ${req.method} ${req.path}`);
}

/** `{"op":"get","key":"fileB.txt"}` becomes the same request as `GET /files/fileB.txt`. */
function fromDirect(event: unknown): ApiRequest {
  const e = (typeof event === 'string' ? safeJson(event) : event) as Record<string, unknown> | null;
  if (!e || typeof e !== 'object') throw new BadRequestError('a direct invocation needs a JSON object like {"op":"get","key":"fileA.txt"}');
  if (e.op === 'get') {
    if (typeof e.key !== 'string') throw new BadRequestError('"key" must be a string');
    return { method: 'GET', path: FILES + e.key, query: e.meta ? { meta: '1' } : {}, headers: {} };
  }
  if (e.op === 'list') {
    const query: Record<string, string> = {};
    for (const name of ['prefix', 'after', 'limit'] as const) if (e[name] !== undefined) query[name] = String(e[name]);
    return { method: 'GET', path: '/files', query, headers: {} };
  }
  throw new BadRequestError(`unknown op ${JSON.stringify(e.op)}; known: "get", "list"`);
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    throw new BadRequestError('the event is not valid JSON');
  }
}

export const handler = http(route, getDeps, fromDirect);
