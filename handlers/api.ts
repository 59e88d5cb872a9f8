import { http, ok, type ApiRequest, type Route } from './http';
import { getDeps } from './deps';
import { BadRequestError, NotFoundError } from '../lib/errors';
import { parseKey } from '../lib/keys';
import { readFile } from '../lib/read';
import type { Deps } from '../lib/deps';

const FILES = '/files/';

const flag = (v: string | undefined) => v === '1' || v === 'true';

const routes: Route<Deps> = async (req, deps) => {
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
  throw new BadRequestError(`unknown op ${JSON.stringify(e.op)}; known: "get"`);
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    throw new BadRequestError('the event is not valid JSON');
  }
}

export const handler = http(routes, getDeps, fromDirect);
