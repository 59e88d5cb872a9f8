import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fromDirect } from '../../handlers/http';
import { httpTransport, invokePayload, isLocalEndpoint, lambdaTransport, routeOf, uploadPart, type ApiOp } from '../../cli/client';
import { Token } from '../../cli/config';

describe('routeOf', () => {
  it('percent-encodes each segment of a key, keeping "/"', () => {
    expect(routeOf({ op: 'get', key: 'docs/a b+c%.txt' })).toEqual({ method: 'GET', path: '/files/docs/a%20b%2Bc%25.txt' });
    expect(routeOf({ op: 'get', key: 'a', meta: true }).path).toBe('/files/a?meta=1');
  });

  it('puts listing parameters in the query', () => {
    expect(routeOf({ op: 'list' }).path).toBe('/files');
    expect(routeOf({ op: 'list', prefix: 'a b/', after: 'x', limit: 10 }).path).toBe('/files?prefix=a+b%2F&after=x&limit=10');
  });

  it('sends a small file raw, with its mtime in x-dfs-mtime', () => {
    const body = Buffer.from('hello');
    expect(routeOf({ op: 'put', key: 'docs/a b.txt', to: 'all', mtime: 1714557600123.7, body })).toEqual({
      method: 'PUT',
      path: '/files/docs/a%20b.txt?to=all',
      headers: { 'content-type': 'application/octet-stream', 'x-dfs-mtime': '1714557600123' },
      body,
    });
    expect(routeOf({ op: 'delete', key: 'a+b' })).toEqual({ method: 'DELETE', path: '/files/a%2Bb' });
  });

  it('sends the upload, reconcile and journal operations as their routes with JSON bodies', () => {
    const json = (op: Parameters<typeof routeOf>[0]) => {
      const r = routeOf(op);
      return { method: r.method, path: r.path, body: r.body ? JSON.parse(Buffer.from(r.body).toString()) : undefined, type: r.headers?.['content-type'] };
    };
    const uploads = [{ store: 'server1', uploadId: 'u1' }];
    expect(json({ op: 'startUpload', key: 'k', size: 9, mtime: 5, to: 'server1' })).toEqual({ method: 'POST', path: '/uploads', body: { key: 'k', size: 9, mtime: 5, to: 'server1' }, type: 'application/json' });
    expect(json({ op: 'signParts', key: 'k', uploads, parts: [1, 2] })).toMatchObject({ path: '/uploads/sign', body: { key: 'k', uploads, parts: [1, 2] } });
    expect(json({ op: 'completeUpload', key: 'k', uploads: [{ ...uploads[0]!, parts: [{ n: 1, etag: '"e"' }] }] })).toMatchObject({ path: '/uploads/complete' });
    expect(json({ op: 'abortUpload', key: 'k', uploads })).toMatchObject({ path: '/uploads/abort', body: { key: 'k', uploads } });
    expect(json({ op: 'reconcile', dryRun: true, force: false })).toEqual({ method: 'POST', path: '/reconcile?dryRun=1', body: undefined, type: undefined });
    expect(routeOf({ op: 'reconcile', dryRun: true, force: true }).path).toBe('/reconcile?dryRun=1&force=1');
    expect(json({ op: 'applyPlan', entries: [] })).toMatchObject({ path: '/reconcile/apply', body: { entries: [] } });
    expect(json({ op: 'replayFailures' })).toEqual({ method: 'POST', path: '/reconcile/replay', body: undefined, type: undefined });
    expect(routeOf({ op: 'events' })).toEqual({ method: 'GET', path: '/events' });
    expect(routeOf({ op: 'events', after: '001-ab' }).path).toBe('/events?after=001-ab');
  });

  it('maps the lock routes: POST and DELETE /locks/KEY with ?store= and flags, GET /locks', () => {
    const body = (op: Parameters<typeof routeOf>[0]) => JSON.parse(Buffer.from(routeOf(op).body!).toString()) as unknown;
    expect(routeOf({ op: 'lock', key: 'docs/a b+c.txt' })).toMatchObject({ method: 'POST', path: '/locks/docs/a%20b%2Bc.txt', headers: { 'content-type': 'application/json' } });
    expect(body({ op: 'lock', key: 'a' })).toEqual({});
    expect(routeOf({ op: 'lock', key: 'a', store: 'server2', reason: 'r', ttl: 60 }).path).toBe('/locks/a?store=server2');
    expect(body({ op: 'lock', key: 'a', reason: 'r', ttl: 60 })).toEqual({ reason: 'r', ttl: 60 });
    expect(routeOf({ op: 'unlock', key: 'a' })).toEqual({ method: 'DELETE', path: '/locks/a' });
    expect(routeOf({ op: 'unlock', key: 'a', store: 's 1', force: true, discard: true }).path).toBe('/locks/a?store=s+1&force=1&discard=1');
    expect(routeOf({ op: 'unlock', key: 'a', force: false, discard: false }).path).toBe('/locks/a');
    expect(routeOf({ op: 'locks' })).toEqual({ method: 'GET', path: '/locks' });
  });
});

describe('invokePayload', () => {
  const uploads = [{ store: 'server1', uploadId: 'u1' }];
  const entries = [{ action: 'copy' as const, key: 'k', from: 'server2', to: ['server1'], reason: 'r' }];
  /** Every operation, and the request its direct invoke stands for. */
  const OPS: Array<[ApiOp, { method: string; path: string; query?: Record<string, string>; headers?: Record<string, string>; json?: unknown; bytes?: string }]> = [
    [{ op: 'get', key: 'docs/a b+c%.txt' }, { method: 'GET', path: '/files/docs/a b+c%.txt' }],
    [{ op: 'get', key: 'a', meta: true }, { method: 'GET', path: '/files/a', query: { meta: '1' } }],
    [{ op: 'list' }, { method: 'GET', path: '/files' }],
    [{ op: 'list', prefix: 'a b/', after: 'x', limit: 10 }, { method: 'GET', path: '/files', query: { prefix: 'a b/', after: 'x', limit: '10' } }],
    [
      { op: 'put', key: 'a b', to: 'server1', mtime: 7.9, body: Buffer.from('hi'), touch: true },
      { method: 'PUT', path: '/files/a b', query: { to: 'server1', touch: '1' }, headers: { 'content-type': 'application/octet-stream', 'x-dfs-mtime': '7' }, bytes: 'hi' },
    ],
    [{ op: 'put', key: 'empty', to: 'all', mtime: 1, body: new Uint8Array(0) }, { method: 'PUT', path: '/files/empty', query: { to: 'all' }, headers: { 'content-type': 'application/octet-stream', 'x-dfs-mtime': '1' }, bytes: '' }],
    [{ op: 'delete', key: 'a+b' }, { method: 'DELETE', path: '/files/a+b' }],
    [{ op: 'startUpload', key: 'k', size: 9, mtime: 5, to: 'all' }, { method: 'POST', path: '/uploads', json: { key: 'k', size: 9, mtime: 5, to: 'all' } }],
    [{ op: 'signParts', key: 'k', uploads, parts: [1] }, { method: 'POST', path: '/uploads/sign', json: { key: 'k', uploads, parts: [1] } }],
    [{ op: 'completeUpload', key: 'k', uploads: [{ ...uploads[0]!, parts: [{ n: 1, etag: '"e"' }] }] }, { method: 'POST', path: '/uploads/complete', json: { key: 'k', uploads: [{ ...uploads[0]!, parts: [{ n: 1, etag: '"e"' }] }] } }],
    [{ op: 'abortUpload', key: 'k', uploads }, { method: 'POST', path: '/uploads/abort', json: { key: 'k', uploads } }],
    [{ op: 'reconcile', dryRun: true, force: true }, { method: 'POST', path: '/reconcile', query: { dryRun: '1', force: '1' } }],
    [{ op: 'replayFailures' }, { method: 'POST', path: '/reconcile/replay' }],
    [{ op: 'applyPlan', entries, force: true }, { method: 'POST', path: '/reconcile/apply', query: { force: '1' }, json: { entries } }],
    [{ op: 'events', after: '001-ab' }, { method: 'GET', path: '/events', query: { after: '001-ab' } }],
    [{ op: 'createToken', name: 'ann', scope: 'read' }, { method: 'POST', path: '/tokens', json: { name: 'ann', scope: 'read' } }],
    [{ op: 'listTokens' }, { method: 'GET', path: '/tokens' }],
    [{ op: 'revokeToken', name: 'ann' }, { method: 'DELETE', path: '/tokens/ann' }],
  ];

  it.each(OPS)('sends %j as the direct request {method, path, query, headers, body}', (op, want) => {
    const payload = invokePayload(op);
    const body = want.json !== undefined ? Buffer.from(JSON.stringify(want.json)).toString('base64') : want.bytes !== undefined ? Buffer.from(want.bytes).toString('base64') : undefined;
    expect(payload).toEqual({
      method: want.method,
      path: want.path,
      query: want.query ?? {},
      headers: want.headers ?? (want.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(body !== undefined ? { body, isBase64Encoded: true } : {}),
    });
    // Never the shape of an API Gateway event, which the function would answer only with a token.
    expect(payload).not.toHaveProperty('requestContext');
    expect(payload).not.toHaveProperty('rawPath');
    expect(JSON.stringify(payload)).not.toMatch(/authorization/i);
  });

  it.each(OPS)('is read by the function as the request of %j (handlers/http.ts fromDirect)', (op) => {
    const route = routeOf(op);
    const [path = '', query = ''] = route.path.split('?');
    const req = fromDirect(JSON.parse(JSON.stringify(invokePayload(op))));
    expect(req).toMatchObject({ method: route.method, path: decodeURIComponent(path), query: Object.fromEntries(new URLSearchParams(query)) });
    expect(req.body?.toString('base64')).toBe(route.body ? Buffer.from(route.body).toString('base64') : undefined);
  });
});

describe('httpTransport', () => {
  const SECRET = 'dfs_ann_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  /** A fetch that records each request's headers and answers `status` with `body`. */
  function fakeFetch(status: number, body: string) {
    const seen: Array<Record<string, string>> = [];
    const doFetch = (async (_url: string, init: RequestInit) => {
      seen.push(init.headers as Record<string, string>);
      return new Response(body, { status });
    }) as unknown as typeof fetch;
    return { seen, doFetch };
  }

  it("knows who it sends as: the token's name, nobody without a token or with one of another form", () => {
    expect(httpTransport({ endpoint: 'http://h', token: new Token(SECRET, 'DFS_TOKEN') }).who).toBe('ann');
    expect(httpTransport({ endpoint: 'http://h', token: new Token('dfs_ci-2_x_y', 'DFS_TOKEN') }).who).toBe('ci-2');
    expect(httpTransport({ endpoint: 'http://h', token: new Token('something-else', 'DFS_TOKEN') }).who).toBeUndefined();
    expect(httpTransport({ endpoint: 'http://h' }).who).toBeUndefined();
    expect(lambdaTransport({ endpoint: 'http://l', functionName: 'f' }).who).toBe('lambda-invoke');
  });

  it('sends the token as a bearer header, and no such header without one', async () => {
    const withToken = fakeFetch(200, '{"files":[],"next":null}');
    await httpTransport({ endpoint: 'http://h', fetch: withToken.doFetch, token: new Token(SECRET, 'DFS_TOKEN') }).send({ op: 'list' });
    expect(withToken.seen[0]).toMatchObject({ authorization: `Bearer ${SECRET}`, accept: 'application/json' });
    const without = fakeFetch(200, '{"files":[],"next":null}');
    await httpTransport({ endpoint: 'http://h', fetch: without.doFetch }).send({ op: 'list' });
    expect(Object.keys(without.seen[0]!).map((k) => k.toLowerCase())).not.toContain('authorization');
  });

  it('turns a 401 into exit 8, naming where the token came from and never the token', async () => {
    const { doFetch } = fakeFetch(401, '{"error":"Unauthorized","message":"the token is not valid"}');
    const err = await httpTransport({ endpoint: 'http://h', fetch: doFetch, token: new Token(SECRET, 'DFS_TOKEN'), configPath: '/c.json' })
      .send({ op: 'get', key: 'a' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      exitCode: 8,
      code: 'Unauthorized',
      details: { tokenFrom: 'DFS_TOKEN' },
      message: 'not signed in: the token from DFS_TOKEN was refused (the token is not valid); set DFS_TOKEN, or "token" in /c.json (a write token can make one: dfs token create NAME)',
    });
    expect(JSON.stringify(err) + String(err)).not.toContain(SECRET);
  });

  it('says how to sign in when no token was sent, whatever the 401 carries', async () => {
    const { doFetch } = fakeFetch(401, 'Unauthorized');
    await expect(httpTransport({ endpoint: 'http://h', fetch: doFetch, configPath: '/c.json' }).send({ op: 'list' })).rejects.toMatchObject({
      exitCode: 8,
      code: 'Unauthorized',
      details: {},
      message: 'not signed in: the server wants a token (401); set DFS_TOKEN, or "token" in /c.json (a write token can make one: dfs token create NAME)',
    });
  });

  it('turns a 403 into exit 8 with the server\'s reason', async () => {
    const { doFetch } = fakeFetch(403, '{"error":"Forbidden","message":"token \\"ann\\" is read-only; this needs a write token"}');
    await expect(httpTransport({ endpoint: 'http://h', fetch: doFetch, token: new Token(SECRET, '/c.json') }).send({ op: 'delete', key: 'a' })).rejects.toMatchObject({
      exitCode: 8,
      code: 'Forbidden',
      details: { tokenFrom: '/c.json' },
      message: 'not allowed: token "ann" is read-only; this needs a write token (the token from /c.json)',
    });
  });
});

describe('uploadPart', () => {
  type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'hang' | 'reset';
  let reply: Reply;
  let received: Buffer[] = [];
  let onReceived = () => {};
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(Buffer.concat(chunks));
      onReceived();
      if (reply === 'hang') return;
      if (reply === 'reset') return void req.socket.destroy();
      res.writeHead(reply.status, reply.headers ?? {});
      res.end(reply.body ?? '');
    });
  });
  let url: string;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bucket/key?partNumber=1&X-Amz-Signature=s`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    received = [];
  });
  const signal = new AbortController().signal;

  it('sends the body as it is and answers the ETag header of a 200', async () => {
    reply = { status: 200, headers: { etag: '"abc"' } };
    await expect(uploadPart(url, Buffer.from('part one'), signal)).resolves.toEqual({ ok: true, etag: '"abc"' });
    expect(received.map(String)).toEqual(['part one']);
  });

  it('says why a part failed, without throwing', async () => {
    reply = { status: 403, body: '<Error><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error>' };
    await expect(uploadPart(url, Buffer.from('x'), signal)).resolves.toEqual({ ok: false, status: 403, why: 'HTTP 403 SignatureDoesNotMatch' });
    reply = { status: 200 };
    await expect(uploadPart(url, Buffer.from('x'), signal)).resolves.toEqual({ ok: false, status: 200, why: 'the answer carries no ETag header' });
    reply = 'reset';
    await expect(uploadPart(url, Buffer.from('x'), signal)).resolves.toEqual({ ok: false, why: 'ECONNRESET' });
  });

  it('rejects with the interrupted error when cancelled mid-request', async () => {
    reply = 'hang';
    const ctrl = new AbortController();
    const arrived = new Promise<void>((resolve) => (onReceived = resolve));
    const pending = uploadPart(url, Buffer.from('x'), ctrl.signal);
    await arrived;
    ctrl.abort();
    await expect(pending).rejects.toMatchObject({ exitCode: 130, code: 'Interrupted' });
  });
});

describe('isLocalEndpoint', () => {
  it.each([
    ['http://localhost:3002', true],
    ['http://127.0.0.1:3002', true],
    ['http://[::1]:3002', true],
    ['https://lambda.eu-west-1.amazonaws.com', false],
    ['http://localhost.evil.com', false],
  ])('%s → %s', (url, local) => expect(isLocalEndpoint(url)).toBe(local));
});
