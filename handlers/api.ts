import { http, ok, type ApiRequest, type Route } from './http';
import { getDeps } from './deps';
import { BadRequestError, NotFoundError } from '../lib/errors';
import { parseKey } from '../lib/keys';
import { readFile } from '../lib/read';
import { listFiles } from '../lib/listing';
import type { Deps } from '../lib/deps';

const FILES = '/files/';

const flag = (v: string | undefined) => v === '1' || v === 'true';

function intParam(v: string | undefined, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new BadRequestError(`${name} must be a whole number`);
  return Number(v);
}

const routes: Route<Deps> = async (req, deps) => {
  if (req.path === '/files' && req.method === 'GET') {
    return ok(await listFiles(deps, { prefix: req.query.prefix, after: req.query.after, limit: intParam(req.query.limit, 'limit') }));
  }
  if (req.path.startsWith(FILES) && req.method === 'GET') {
    const key = parseKey(req.path.slice(FILES.length));
    const answer = await readFile(deps, key, { meta: flag(req.query.meta) });
    return ok(answer, answer.status === 'NOT_FOUND' ? 404 : 200);
  }
  throw new NotFoundError(`no route for ${req.method} ${req.path}`);
};

/** `{"op":"get","key":"fileB.txt"}` becomes the same request as `GET /files/fileB.txt`. */
function fromDirect(event: unknown): ApiRequest {
  const e = (typeof event === 'string' ? safeJson(event) : event) as Record<string, unknown> | null;
  if (!e || typeof e !== 'object') throw new BadRequestError('a direct invocation needs a JSON object like {"op":"get","key":"fileA.txt"}');
  if (e.op === 'get') {
    if (typeof e.key !== 'string') throw new BadRequestError('"key" must be a string');
    return {
      method: 'GET',
      path: FILES + e.key,
      query: e.meta ? { meta: '1' } : {},
      headers: {},
    };
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

export const handler = http(routes, getDeps, fromDirect);
