import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpTransport, invokePayload, isLocalEndpoint, routeOf, uploadPart } from '../../cli/client';

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
});

describe('invokePayload', () => {
  it('hands get and list over as direct events', () => {
    expect(invokePayload({ op: 'get', key: 'a' })).toEqual({ op: 'get', key: 'a' });
  });

  it('wraps other operations as the API Gateway event of their route, body in base64', () => {
    expect(invokePayload({ op: 'put', key: 'a b', to: 'all', mtime: 7, body: Buffer.from('hi') })).toEqual({
      version: '2.0',
      routeKey: '$default',
      rawPath: '/files/a%20b',
      rawQueryString: 'to=all',
      headers: { 'content-type': 'application/octet-stream', 'x-dfs-mtime': '7' },
      queryStringParameters: { to: 'all' },
      requestContext: { http: { method: 'PUT', path: '/files/a%20b' } },
      body: Buffer.from('hi').toString('base64'),
      isBase64Encoded: true,
    });
    expect(invokePayload({ op: 'delete', key: 'a' })).toMatchObject({ rawPath: '/files/a', queryStringParameters: {}, isBase64Encoded: false });
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
