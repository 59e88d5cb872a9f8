import { http, ok, raw, type ApiRequest, type ApiResponse, type RouteSpec } from './http';
import { getDeps } from './deps';
import { BadRequestError, PayloadTooLargeError } from '../lib/errors';
import { createToken, listTokens, revokeToken } from '../lib/tokens';
import { listLocks } from '../lib/locks';
import { lockFile, unlockFile } from '../lib/locking';
import { storeNamed } from '../lib/stores';
import { parseKey } from '../lib/keys';
import { readFile } from '../lib/read';
import { listFiles } from '../lib/listing';
import { abortUpload, completeUpload, putFile, signParts, startUpload } from '../lib/upload';
import { deleteFile } from '../lib/delete';
import { applyEntries, reconcile } from '../lib/sync';
import { readEvents } from '../lib/journal';
import { replayFailures } from '../lib/failures';
import { INDEX, assetFile, pageCsp, pageFile, storeOrigins } from '../lib/page';
import { PAGE } from '../web/bundled';
import type { Deps } from '../lib/deps';
import type { WriteAnswer } from '../lib/types';

const FILES = '/files/';
/** Replaying failed events in a request leaves the rest of API Gateway's 29 s to the request itself. */
const REPLAY_BUDGET_MS = 10_000;
const MAX_JSON_BYTES = 1024 * 1024;

/**
 * A yes/no query flag: `1`/`true` or `0`/`false`, absent = no. Anything else is refused rather
 * than read as no (`dryRun=TRUE` must not run the real thing).
 */
function flag(v: string | undefined, name = 'flag'): boolean {
  if (v === undefined || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  throw new BadRequestError(`${name} takes 1, true, 0 or false`);
}

function intParam(v: string | undefined, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new BadRequestError(`${name} must be a whole number`);
  return Number(v);
}

function jsonBody(req: ApiRequest): unknown {
  if (!req.body || req.body.length === 0) throw new BadRequestError('a JSON body is required');
  if (req.body.length > MAX_JSON_BYTES) throw new PayloadTooLargeError(`JSON bodies are limited to ${MAX_JSON_BYTES} bytes`);
  let text: string;
  try {
    // Invalid UTF-8 is refused, not read as U+FFFD into a key or a name.
    text = new TextDecoder('utf-8', { fatal: true }).decode(req.body);
  } catch {
    throw new BadRequestError('the body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequestError('the body is not valid JSON');
  }
}

/** 200 when every store took the write, 207 when some did, 503 when none did. */
function written(answer: WriteAnswer): ApiResponse {
  const done = answer.results.filter((r) => r.ok).length;
  return ok(answer, done === answer.results.length ? 200 : done > 0 ? 207 : 503);
}

type Handle = RouteSpec<Deps>['handle'];
const route = (scope: RouteSpec<Deps>['scope'], handle: Handle): RouteSpec<Deps> => ({ scope, handle });
const keyOf = (req: ApiRequest, prefix: string) => parseKey(req.path.slice(prefix.length));

/** `files/` routes take the key from the rest of the path; the others match exactly. */
const fileRoutes: Record<string, RouteSpec<Deps>> = {
  GET: route('read', async (req, deps) => {
    const answer = await readFile(deps, keyOf(req, FILES), { meta: flag(req.query.meta, 'meta') });
    return ok(answer, answer.status === 'NOT_FOUND' ? 404 : 200);
  }),
  PUT: route('write', async (req, deps) =>
    written(
      await putFile(deps, {
        key: keyOf(req, FILES),
        body: req.body ?? Buffer.alloc(0),
        to: req.query.to,
        mtime: req.headers['x-dfs-mtime'],
        touch: flag(req.query.touch, 'touch'),
        who: req.who.name,
      }),
    ),
  ),
  DELETE: route('write', async (req, deps) => written(await deleteFile(deps, keyOf(req, FILES), req.who.name))),
};

/** A dry run only reads; anything that applies needs a write token. */
const reconcileScope = (req: ApiRequest) => (flag(req.query.dryRun, 'dryRun') ? 'read' : 'write');

const exactRoutes: Record<string, RouteSpec<Deps>> = {
  'GET /files': route('read', async (req, deps) =>
    ok(await listFiles(deps, { prefix: req.query.prefix, after: req.query.after, limit: intParam(req.query.limit, 'limit') })),
  ),
  'POST /uploads': route('write', async (req, deps) => ok(await startUpload(deps, jsonBody(req), req.who.name))),
  'POST /uploads/sign': route('write', async (req, deps) => ok(await signParts(deps, jsonBody(req)))),
  'POST /uploads/complete': route('write', async (req, deps) => written(await completeUpload(deps, jsonBody(req), req.who.name))),
  'POST /uploads/abort': route('write', async (req, deps) => written(await abortUpload(deps, jsonBody(req)))),
  'POST /reconcile': route(reconcileScope, async (req, deps) =>
    ok(await reconcile(deps, { dryRun: flag(req.query.dryRun, 'dryRun'), force: flag(req.query.force, 'force'), replayBudgetMs: REPLAY_BUDGET_MS })),
  ),
  'POST /reconcile/replay': route('write', async (_req, deps) => ok(await replayFailures(deps, REPLAY_BUDGET_MS))),
  'POST /reconcile/apply': route('write', async (req, deps) => ok(await applyEntries(deps, jsonBody(req), { force: flag(req.query.force, 'force') }))),
  'GET /events': route('read', async (req, deps) => ok(await readEvents(deps, req.query.after))),
  'GET /tokens': route('write', async (_req, deps) => ok(await listTokens(deps))),
  'GET /locks': route('read', async (_req, deps) => ok({ locks: await listLocks(deps) })),
  'POST /tokens': route('write', async (req, deps) => ok(await createToken(deps, jsonBody(req), req.who), 201)),
};

const ASSETS = '/assets/';

/**
 * The web page's own files, the only public routes: they hold no data, and the page asks for a
 * token itself. The index carries the policy, which names the stores' origins.
 */
const pageRoute = route('public', async (req, deps) => {
  const enc = req.headers['accept-encoding'];
  const page = req.path === '/' ? pageFile(PAGE, INDEX, enc, pageCsp(await storeOrigins(deps.stores))) : assetFile(PAGE, req.path.slice(ASSETS.length), enc);
  return raw(page.body, page.base64, page.headers);
});

const TOKENS = '/tokens/';
const LOCKS = '/locks/';
/** An unlock drains for this long in the request, then answers 202 and goes on by itself. */
const DRAIN_BUDGET_MS = 20_000;

/** The store a lock route is about: `?store=`, by default the first store. */
const lockStore = (req: ApiRequest, deps: Deps) => storeNamed(deps.stores, req.query.store ?? deps.stores[0]!.name).name;

const lockRoutes: Record<string, RouteSpec<Deps>> = {
  POST: route('write', async (req, deps) => {
    const key = keyOf(req, LOCKS);
    const body = req.body && req.body.length > 0 ? (jsonBody(req) as Record<string, unknown>) : {};
    return ok(await lockFile(deps, key, lockStore(req, deps), req.who, body), 201);
  }),
  DELETE: route('write', async (req, deps) => {
    const key = keyOf(req, LOCKS);
    const progress = await unlockFile(deps, key, lockStore(req, deps), req.who, {
      force: flag(req.query.force, 'force'),
      discard: flag(req.query.discard, 'discard'),
      budgetMs: DRAIN_BUDGET_MS,
    });
    return ok(progress, progress.done ? 200 : 202);
  }),
};

/** The route of a request; undefined when there is none (answered 404 NoRoute by the wrapper). */
function router(req: ApiRequest): RouteSpec<Deps> | undefined {
  const exact = exactRoutes[`${req.method} ${req.path}`];
  if (exact) return exact;
  if (req.path.startsWith(FILES)) return fileRoutes[req.method];
  if (req.path.startsWith(LOCKS)) return lockRoutes[req.method];
  if (req.method === 'GET' && (req.path === '/' || req.path.startsWith(ASSETS))) return pageRoute;
  if (req.method === 'DELETE' && req.path.startsWith(TOKENS)) return route('write', async (r, deps) => ok(await revokeToken(deps, r.path.slice(TOKENS.length))));
  return undefined;
}

export const handler = http(router, getDeps);
