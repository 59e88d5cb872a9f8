/**
 * Who may do what (DESIGN.md), against the real local stack: every route of handlers/api.ts, through
 * API Gateway (sls offline) and as an API Gateway event sent by Lambda invoke, answers 401 to no
 * token, a wrong one and a revoked one, and 403 to a read token on a write route, changing no
 * bucket; the right token works on both, and a direct invoke in the request shape works without
 * one (IAM decides who may invoke on AWS). Tokens are made and revoked through the API itself.
 * test/unit/auth.test.ts holds the same matrix against the handler with a fake S3.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../lib/config';
import { startLocalStack, type LocalStack } from '../../scripts/stack';
import { apiEvent } from '../helpers/apigw';
import { lambdaInvoker, sendRaw, snapshotBuckets, snapshotChanges, waitForStillBuckets, type RawAnswer } from '../helpers/stack-client';

jest.setTimeout(60_000);

const dataDir = mkdtempSync(join(tmpdir(), 'dfs-auth-'));
let stack: LocalStack | undefined;
let s3: S3Client | undefined;
let invoker: ReturnType<typeof lambdaInvoker> | undefined;

/** Tokens made through the API in beforeAll. */
const tokens = { writer: '', reader: '', revoked: '' };
const WRONG = `dfs_local_${'W'.repeat(43)}`;

/** A request as the routes see it. */
interface Req {
  method: string;
  path: string;
  query?: Record<string, string>;
  body?: unknown;
}

/** What came back, whichever way the request went. */
interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  headers: Record<string, string>;
  /** Everything the caller received, to search for tokens. */
  text: string;
}

const bodyText = (body: unknown) => (body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
const search = (query?: Record<string, string>) => (query ? `?${new URLSearchParams(query)}` : '');

/** Through API Gateway (sls offline), with `auth` as the whole Authorization header (null: none). */
async function viaHttp(req: Req, auth: string | null): Promise<Answer> {
  const body = bodyText(req.body);
  const res: RawAnswer = await sendRaw(stack!.apiUrl, {
    method: req.method,
    path: `${req.path}${search(req.query)}`,
    headers: [...(auth !== null ? [['Authorization', auth] as [string, string]] : []), ['Content-Type', 'application/json']],
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.status, body: res.json, headers: res.headers, text: res.text };
}

/** The API Gateway (payload 2.0) event of the same request, sent by Lambda invoke. */
async function viaEvent(req: Req, auth: string | null): Promise<Answer> {
  const body = bodyText(req.body);
  const out = await invoker!.invoke(apiEvent(req.method, req.path, { auth, ...(req.query ? { query: req.query } : {}), ...(body !== undefined ? { body } : {}) }));
  return { status: out.result.statusCode, body: out.result.body, headers: out.result.headers ?? {}, text: JSON.stringify(out.result) };
}

/** A direct invoke in the request shape: no token (IAM gates it on AWS). */
async function viaDirect(req: Req): Promise<Answer> {
  const body = bodyText(req.body);
  const out = await invoker!.invoke({ method: req.method, path: req.path, ...(req.query ? { query: req.query } : {}), ...(body !== undefined ? { body } : {}) });
  return { status: out.result.statusCode, body: out.result.body, headers: {}, text: JSON.stringify(out.result) };
}

/** A request with the stack's own token that must succeed (setting up), or the test stops here. */
async function must(req: Req): Promise<Answer> {
  const res = await viaHttp(req, `Bearer ${stack!.token}`);
  if (res.status >= 300) throw new Error(`${req.method} ${req.path} answered ${res.status}: ${res.text}`);
  return res;
}

/** A multipart upload of `text` under `key`, started and its one part sent to every store: ready to complete. */
async function uploadedParts(key: string, text: string) {
  const plan = (await must({ method: 'POST', path: '/uploads', body: { key, size: Buffer.byteLength(text) } })).body as { uploads: { store: string; uploadId: string }[] };
  const signed = (await must({ method: 'POST', path: '/uploads/sign', body: { key, uploads: plan.uploads, parts: [1] } })).body as { urls: Record<string, string[]> };
  const uploads = await Promise.all(
    plan.uploads.map(async (u) => {
      const res = await fetch(signed.urls[u.store]![0]!, { method: 'PUT', body: text });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`part upload to ${u.store} answered ${res.status}`);
      return { ...u, parts: [{ n: 1, etag: res.headers.get('etag')! }] };
    }),
  );
  return { key, uploads };
}

let made = 0;
/** A name no earlier step used. */
const fresh = (prefix: string) => `${prefix}-${++made}`;

interface Route {
  /** As handlers/api.ts names it. */
  route: string;
  scope: 'read' | 'write';
  /** A request the route would act on, aimed at something worth keeping: what the refusals send. */
  refused: Req;
  /** Makes what a working request needs and returns it; called once per way in. */
  works: () => Promise<Req>;
  /** Its answer's status when it works. */
  status: number;
}

const ROUTES: Route[] = [
  { route: 'GET /files/{key}', scope: 'read', refused: { method: 'GET', path: '/files/fileB.txt' }, works: async () => ({ method: 'GET', path: '/files/fileA.txt' }), status: 200 },
  { route: 'GET /files', scope: 'read', refused: { method: 'GET', path: '/files' }, works: async () => ({ method: 'GET', path: '/files', query: { limit: '2' } }), status: 200 },
  {
    route: 'PUT /files/{key}',
    scope: 'write',
    refused: { method: 'PUT', path: '/files/fileA.txt', body: 'overwritten by a refused request' },
    works: async () => ({ method: 'PUT', path: `/files/auth/${fresh('put')}.txt`, body: 'written with the right token' }),
    status: 200,
  },
  {
    route: 'DELETE /files/{key}',
    scope: 'write',
    refused: { method: 'DELETE', path: '/files/fileA.txt' },
    works: async () => {
      const path = `/files/auth/${fresh('del')}.txt`;
      await must({ method: 'PUT', path, body: 'to be deleted' });
      return { method: 'DELETE', path };
    },
    status: 200,
  },
  { route: 'POST /uploads', scope: 'write', refused: { method: 'POST', path: '/uploads', body: { key: 'fileA.txt', size: 10 } }, works: async () => ({ method: 'POST', path: '/uploads', body: { key: `auth/${fresh('up')}.bin`, size: 10 } }), status: 200 },
  {
    route: 'POST /uploads/sign',
    scope: 'write',
    refused: { method: 'POST', path: '/uploads/sign', body: { key: 'fileA.txt', uploads: [{ store: 'server1', uploadId: 'u1' }], parts: [1] } },
    works: async () => {
      const key = `auth/${fresh('sign')}.bin`;
      const plan = (await must({ method: 'POST', path: '/uploads', body: { key, size: 10 } })).body as { uploads: unknown[] };
      return { method: 'POST', path: '/uploads/sign', body: { key, uploads: plan.uploads, parts: [1] } };
    },
    status: 200,
  },
  {
    route: 'POST /uploads/complete',
    scope: 'write',
    refused: { method: 'POST', path: '/uploads/complete', body: { key: 'fileA.txt', uploads: [{ store: 'server1', uploadId: 'u1', parts: [{ n: 1, etag: '"e"' }] }] } },
    works: async () => ({ method: 'POST', path: '/uploads/complete', body: await uploadedParts(`auth/${fresh('complete')}.txt`, 'completed with the right token') }),
    status: 200,
  },
  {
    route: 'POST /uploads/abort',
    scope: 'write',
    refused: { method: 'POST', path: '/uploads/abort', body: { key: 'fileA.txt', uploads: [{ store: 'server1', uploadId: 'u1' }] } },
    works: async () => {
      const key = `auth/${fresh('abort')}.bin`;
      const plan = (await must({ method: 'POST', path: '/uploads', body: { key, size: 10 } })).body as { uploads: unknown[] };
      return { method: 'POST', path: '/uploads/abort', body: { key, uploads: plan.uploads } };
    },
    status: 200,
  },
  { route: 'POST /reconcile?dryRun=1', scope: 'read', refused: { method: 'POST', path: '/reconcile', query: { dryRun: '1' } }, works: async () => ({ method: 'POST', path: '/reconcile', query: { dryRun: '1' } }), status: 200 },
  // Refused while the seed still differs (fileB, fileC): a reconcile let through would copy both.
  { route: 'POST /reconcile', scope: 'write', refused: { method: 'POST', path: '/reconcile' }, works: async () => ({ method: 'POST', path: '/reconcile' }), status: 200 },
  { route: 'POST /reconcile/replay', scope: 'write', refused: { method: 'POST', path: '/reconcile/replay' }, works: async () => ({ method: 'POST', path: '/reconcile/replay' }), status: 200 },
  {
    route: 'POST /reconcile/apply',
    scope: 'write',
    refused: { method: 'POST', path: '/reconcile/apply', body: { entries: [{ key: 'fileB.txt' }, { key: 'fileC.txt' }] } },
    works: async () => ({ method: 'POST', path: '/reconcile/apply', body: { entries: [{ key: 'fileA.txt' }] } }),
    status: 200,
  },
  { route: 'GET /events', scope: 'read', refused: { method: 'GET', path: '/events' }, works: async () => ({ method: 'GET', path: '/events' }), status: 200 },
  { route: 'GET /tokens', scope: 'write', refused: { method: 'GET', path: '/tokens' }, works: async () => ({ method: 'GET', path: '/tokens' }), status: 200 },
  { route: 'POST /tokens', scope: 'write', refused: { method: 'POST', path: '/tokens', body: { name: 'intruder' } }, works: async () => ({ method: 'POST', path: '/tokens', body: { name: fresh('made'), scope: 'read' } }), status: 201 },
  {
    route: 'DELETE /tokens/{name}',
    scope: 'write',
    refused: { method: 'DELETE', path: '/tokens/local' },
    works: async () => {
      const name = fresh('doomed');
      await must({ method: 'POST', path: '/tokens', body: { name } });
      return { method: 'DELETE', path: `/tokens/${name}` };
    },
    status: 200,
  },
  { route: 'GET /locks', scope: 'read', refused: { method: 'GET', path: '/locks' }, works: async () => ({ method: 'GET', path: '/locks' }), status: 200 },
  {
    route: 'POST /locks/{key}',
    scope: 'write',
    refused: { method: 'POST', path: '/locks/fileA.txt', body: { reason: 'a refused lock' } },
    works: async () => {
      const path = `/files/auth/${fresh('lock')}.txt`;
      await must({ method: 'PUT', path, body: 'to be locked' });
      return { method: 'POST', path: path.replace('/files/', '/locks/'), body: { reason: 'the right token' } };
    },
    status: 201,
  },
  {
    route: 'DELETE /locks/{key}',
    scope: 'write',
    refused: { method: 'DELETE', path: '/locks/auth/held.txt', query: { force: '1' } },
    works: async () => {
      const path = `/files/auth/${fresh('unlock')}.txt`;
      await must({ method: 'PUT', path, body: 'to be locked, then unlocked' });
      await must({ method: 'POST', path: path.replace('/files/', '/locks/') });
      // Another identity locked it (the stack's own token): force says to unlock it anyway.
      return { method: 'DELETE', path: path.replace('/files/', '/locks/'), query: { force: '1' } };
    },
    status: 200,
  },
];

/** Nothing the caller received names a token or its secret. */
function expectNoToken(text: string): void {
  for (const t of [stack!.token, ...Object.values(tokens)]) {
    expect(text).not.toContain(t);
    // The secret is the token's last 43 characters (lib/tokens.ts); it may itself hold a `_`,
    // so the part after the last one could be two letters found in any ETag.
    expect(text).not.toContain(t.slice(-43));
  }
}

beforeAll(async () => {
  stack = await startLocalStack({ dataDir, reset: true, quiet: true });
  s3 = createS3Client({ endpoint: stack.s3Endpoint });
  invoker = lambdaInvoker(stack.lambdaEndpoint, stack.functionName);
  await must({ method: 'GET', path: '/files' }); // the stack makes its cursor secret on the first listing
  tokens.writer = (await must({ method: 'POST', path: '/tokens', body: { name: 'writer', scope: 'write' } })).body.token;
  tokens.reader = (await must({ method: 'POST', path: '/tokens', body: { name: 'reader', scope: 'read' } })).body.token;
  tokens.revoked = (await must({ method: 'POST', path: '/tokens', body: { name: 'revoked', scope: 'write' } })).body.token;
  expect((await viaHttp({ method: 'GET', path: '/files' }, `Bearer ${tokens.revoked}`)).status).toBe(200); // it worked…
  await must({ method: 'DELETE', path: '/tokens/revoked' }); // …until revoked through the API
  await must({ method: 'PUT', path: '/files/auth/held.txt', body: 'locked while the refusals try to unlock it' });
  await must({ method: 'POST', path: '/locks/auth/held.txt', body: { reason: 'held for the refusals' } });
  await waitForStillBuckets(s3); // the write's own events replicate and journal after its answer
}, 180_000);

afterAll(async () => {
  invoker?.destroy();
  s3?.destroy();
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

type Way = [string, (req: Req, auth: string | null) => Promise<Answer>];
const WAYS: Way[] = [
  ['sls offline', viaHttp],
  ['an API Gateway event by invoke', viaEvent],
];

const VARIANTS: { name: string; auth: () => string | null; status: number; error: string; only?: 'write' }[] = [
  { name: 'no token', auth: () => null, status: 401, error: 'Unauthorized' },
  { name: 'a wrong token', auth: () => `Bearer ${WRONG}`, status: 401, error: 'Unauthorized' },
  { name: 'a revoked token', auth: () => `Bearer ${tokens.revoked}`, status: 401, error: 'Unauthorized' },
  { name: 'a read token', auth: () => `Bearer ${tokens.reader}`, status: 403, error: 'Forbidden', only: 'write' },
];

describe('refused: every route × {no token, wrong, revoked, read token on a write route}, on sls offline and by invoke', () => {
  for (const r of ROUTES) {
    for (const v of VARIANTS.filter((x) => !x.only || x.only === r.scope)) {
      it(`${r.route}: ${v.name} → ${v.status} ${v.error}, no bucket changed`, async () => {
        const before = await snapshotBuckets(s3!);
        for (const [way, send] of WAYS) {
          const res = await send(r.refused, v.auth());
          expect({ way, status: res.status, error: res.body?.error }).toEqual({ way, status: v.status, error: v.error });
          if (v.status === 401) expect(res.headers['www-authenticate']).toBe('Bearer');
          expectNoToken(res.text);
        }
        expect(snapshotChanges(before, await snapshotBuckets(s3!))).toEqual([]);
      });
    }
  }
});

describe('allowed: the right token works on every route, and a direct invoke needs none', () => {
  for (const r of ROUTES) {
    const right = r.scope === 'read' ? ['writer', 'reader'] as const : ['writer'] as const;
    it(`${r.route}: ${right.join(' or ')} token → ${r.status} on sls offline and by invoke; the request shape → ${r.status} without a token`, async () => {
      for (const name of right) {
        for (const [way, send] of WAYS) {
          const res = await send(await r.works(), `Bearer ${tokens[name]}`);
          expect({ way, name, status: res.status, error: res.body?.error }).toEqual({ way, name, status: r.status, error: undefined });
          expectNoToken(res.text);
        }
      }
      const direct = await viaDirect(await r.works());
      expect({ way: 'direct invoke', status: direct.status, error: direct.body?.error }).toEqual({ way: 'direct invoke', status: r.status, error: undefined });
    });
  }

  it("records who wrote: the token's name, or lambda-invoke for a direct invoke", async () => {
    const who = async (key: string) => (await s3!.send(new HeadObjectCommand({ Bucket: stack!.stores[0]!.bucket, Key: key }))).Metadata?.['dfs-who'];
    expect((await viaHttp({ method: 'PUT', path: '/files/auth/who-http.txt', body: 'x' }, `Bearer ${tokens.writer}`)).status).toBe(200);
    expect((await viaEvent({ method: 'PUT', path: '/files/auth/who-event.txt', body: 'x' }, `Bearer ${tokens.writer}`)).status).toBe(200);
    expect((await viaDirect({ method: 'PUT', path: '/files/auth/who-direct.txt', body: 'x' })).status).toBe(200);
    expect([await who('auth/who-http.txt'), await who('auth/who-event.txt'), await who('auth/who-direct.txt')]).toEqual(['writer', 'writer', 'lambda-invoke']);
  });

  it('a token revoked through the API stays refused, and one made through it works at once', async () => {
    const made = (await must({ method: 'POST', path: '/tokens', body: { name: 'late', scope: 'read' } })).body.token as string;
    expect((await viaHttp({ method: 'GET', path: '/files/fileA.txt' }, `Bearer ${made}`)).status).toBe(200);
    expect((await viaHttp({ method: 'GET', path: '/files/fileA.txt' }, `Bearer ${tokens.revoked}`)).status).toBe(401);
    const list = (await must({ method: 'GET', path: '/tokens' })).body.tokens as { name: string }[];
    expect(list.map((t) => t.name)).toEqual(expect.arrayContaining(['late', 'local', 'reader', 'writer']));
    expect(list.map((t) => t.name)).not.toContain('revoked');
    expectNoToken(JSON.stringify(list));
  });
});
