import { gunzipSync, gzipSync } from 'node:zlib';
import { assetFile, pageCsp, pageFile, type PageBundle } from '../../lib/page';
import { RouteNotFoundError } from '../../lib/errors';
import { http, raw, type ApiRequest, type RouteSpec } from '../../handlers/http';
import { apiEvent } from '../helpers/apigw';
import type { ControlBucket } from '../../lib/control';

const file = (type: string, text: string) => ({ type, text, gzip: gzipSync(text).toString('base64') });
const BUNDLE: PageBundle = {
  files: {
    'index.html': file('text/html; charset=utf-8', '<!doctype html><script type="module" src="assets/app.ABCD1234.js"></script>'),
    'app.ABCD1234.js': file('text/javascript; charset=utf-8', 'console.log(1)'),
  },
};

describe('pageFile', () => {
  it('serves the index revalidated on every load, with the policy it is given', () => {
    const page = pageFile(BUNDLE, 'index.html', '', "default-src 'none'");
    expect(page).toEqual({
      body: BUNDLE.files['index.html']!.text,
      base64: false,
      headers: expect.objectContaining({ 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'content-security-policy': "default-src 'none'", 'x-content-type-options': 'nosniff' }),
    });
  });

  it('gzips for a client that takes gzip, as base64 for API Gateway to decode', () => {
    const page = pageFile(BUNDLE, 'index.html', 'br, gzip;q=0.9');
    expect(page.base64).toBe(true);
    expect(page.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(Buffer.from(page.body, 'base64')).toString()).toBe(BUNDLE.files['index.html']!.text);
  });

  it('keeps a hashed asset for a year, unchanged names being unchanged content', () => {
    expect(assetFile(BUNDLE, 'app.ABCD1234.js').headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('serves nothing under /assets/ but hashed assets: not the index (it needs its policy), not a prototype key', () => {
    for (const name of ['index.html', 'constructor', '__proto__', 'app.ABCD1234.js/..', '../index.html', 'app.abcd1234.js']) {
      expect(() => assetFile(BUNDLE, name)).toThrow(RouteNotFoundError);
    }
    expect(() => pageFile(BUNDLE, 'constructor')).toThrow(RouteNotFoundError);
  });

  it('says a build without the page has none (tsx and jest do not run the build plugin)', () => {
    expect(() => pageFile(undefined, 'index.html')).toThrow(/holds no web page/);
  });
});

describe('pageCsp', () => {
  it('allows only the page\'s own scripts and styles, and connections to itself and the stores', () => {
    const csp = pageCsp(['http://localhost:4569', 'http://localhost:4569', 'https://b.s3.us-east-1.amazonaws.com']);
    expect(csp.split('; ')).toEqual([
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      "connect-src 'self' http://localhost:4569 https://b.s3.us-east-1.amazonaws.com",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
      "object-src 'none'",
    ]);
    expect(csp).not.toMatch(/unsafe/);
  });
});

describe('http with raw bodies', () => {
  const deps = { control: {} as ControlBucket };
  const routes: Record<string, RouteSpec<typeof deps>> = {
    'GET /': { scope: 'public', handle: async () => raw('PGgx', true, { 'content-type': 'text/html', 'content-encoding': 'gzip' }) },
    'GET /assets/missing': { scope: 'public', handle: async () => { throw new RouteNotFoundError('the page has no file "missing"'); } },
  };
  const handler = http((req: ApiRequest) => routes[`${req.method} ${req.path}`], () => deps);

  it('answers a raw body as it is, base64 flagged, with the route\'s headers and no JSON type, and no token asked', async () => {
    expect(await handler(apiEvent('GET', '/', { auth: null }))).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'text/html', 'content-encoding': 'gzip' },
      body: 'PGgx',
      isBase64Encoded: true,
    });
  });

  it('answers an error of a public route through the one JSON error path', async () => {
    const res = (await handler(apiEvent('GET', '/assets/missing', { auth: null }))) as { statusCode: number; headers: Record<string, string>; body: string };
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(res.body)).toEqual({ error: 'NoRoute', message: 'the page has no file "missing"' });
  });
});
