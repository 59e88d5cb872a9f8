/**
 * Hostile inputs (issue 8), as data: requests through the API (sls offline), direct Lambda invokes,
 * and `dfs` runs, each with the status or exit code and the error code it must get. Every case
 * must leave every bucket (and, for the CLI, the local folders) as it found them unless it says
 * otherwise. test/e2e/hostile.test.ts runs them in order against one local stack.
 *
 * `known` marks a case the product fails today: the test runs it as `it.failing`, and the text
 * says what goes wrong and where. Fixing the product turns that test red: then drop `known`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { apiEvent } from '../helpers/apigw';

/** What the cases need from the running stack, made by the test before the first case. */
export interface CorpusContext {
  /** The stack's own write token (`local`). */
  token: string;
  /** A live read token. */
  readToken: string;
  /** A token that worked, then was revoked through `DELETE /tokens/{name}`. */
  revokedToken: string;
  /** A multipart upload started through `POST /uploads`, no part of which was ever sent. */
  upload: { key: string; uploads: { store: string; uploadId: string }[] };
  /** A cursor the API issued: `next` of `GET /files?limit=1`. */
  cursor: string;
}

type Lazy<T> = T | ((ctx: CorpusContext) => T);

export const resolveLazy = <T>(v: Lazy<T>, ctx: CorpusContext): T => (typeof v === 'function' ? (v as (c: CorpusContext) => T)(ctx) : v);

/** What an answer must be: its status, its `error` code, and fields it must hold. */
export interface Expected {
  status: number;
  /** The `error` code of our JSON errors; for the HTTP layer's own refusals, what it says (or undefined: no JSON). */
  error?: string;
  /** Fields the JSON answer holds (toMatchObject). */
  body?: Record<string, unknown>;
}

export type ApiCategory = 'keys' | 'query' | 'headers' | 'auth' | 'json' | 'uploads' | 'reconcile' | 'tokens' | 'locks';

/** A request through API Gateway (sls offline), sent byte for byte. */
export interface ApiCase {
  category: ApiCategory;
  name: string;
  method: string;
  /** Sent as written: `..`, `//`, percent-encoding and raw bytes included. */
  path: Lazy<string>;
  /** The whole Authorization header; the stack's token by default, null for none. */
  auth?: Lazy<string | null>;
  /** More header lines, in order (repeats allowed). */
  headers?: Lazy<[string, string][]>;
  body?: Lazy<string | Buffer>;
  expect: Expected;
  /** Objects (`bucket/key`) the case may add or change: none unless given. */
  writes?: RegExp;
  /** A product bug: what goes wrong and where. The test is `it.failing`. */
  known?: string;
  /** More to check once the answer is in, before the buckets are compared. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  check?: (answer: any) => Promise<void>;
}

/** A direct invoke of the API function: the request shape, or an API Gateway event sent by invoke. */
export interface InvokeCase {
  category: 'direct' | 'apigw-event';
  name: string;
  event: Lazy<unknown>;
  /** `statusCode` of the function's result, and its body's `error`. */
  expect: Expected;
  known?: string;
}

export type CliCategory = 'cli-flags' | 'cli-keys' | 'cli-files' | 'cli-output' | 'cli-tokens';

/** One `dfs` run, in a fresh folder (`dir`, its cwd) with a fresh `outside` folder next to it. */
export interface CliCase {
  category: CliCategory;
  name: string;
  /** `--json` is added after the command's words. */
  args: Lazy<string[]>;
  /** Environment on top of the test's (DFS_ENDPOINT a recording proxy, DFS_TOKEN the stack's). */
  env?: Lazy<Record<string, string>>;
  /** Makes the fixtures in `dir` and `outside` before the run. */
  setup?: (dir: string, outside: string) => void;
  expect: { exit: number; error?: string };
  /** True when the command may reach the API (a read, or a request the server refuses); else nothing may be sent. */
  sends?: boolean;
  /** Changes to `dir` the run must make (snapshotChanges lines), none unless given; `outside` never changes. */
  localChanges?: string[];
  /** Give up on the run after this long (default 30 s). */
  timeoutMs?: number;
  known?: string;
}

// ---------------------------------------------------------------------------------------------
// Inputs

const SEG300 = `hostile/${'x'.repeat(300)}.txt`;
/** 901 bytes in segments S3rver can store: only the 900-byte rule refuses it. */
const KEY901 = `${'k'.repeat(100)}/`.repeat(8) + 'k'.repeat(93);
/** A token of another stack: a name this one has, a secret it never issued. */
const OTHER_STACK_TOKEN = `dfs_local_${randomBytes(32).toString('base64url')}`;
const WRONG_TOKEN = `dfs_local_${'W'.repeat(43)}`;
const bearer = (t: string) => `Bearer ${t}`;
const json = (v: unknown) => JSON.stringify(v);
const MiB = 1024 * 1024;

const put = (category: ApiCategory, name: string, path: string, expect: Expected, more: Partial<ApiCase> = {}): ApiCase => ({
  category,
  name,
  method: 'PUT',
  path,
  body: 'hostile bytes',
  expect,
  ...more,
});
const get = (category: ApiCategory, name: string, path: string, expect: Expected, more: Partial<ApiCase> = {}): ApiCase => ({ category, name, method: 'GET', path, expect, ...more });
const post = (category: ApiCategory, name: string, path: string, body: Lazy<string | Buffer>, expect: Expected, more: Partial<ApiCase> = {}): ApiCase => ({
  category,
  name,
  method: 'POST',
  path,
  body,
  headers: [['Content-Type', 'application/json']],
  expect,
  ...more,
});
const invalidKey: Expected = { status: 400, error: 'InvalidKey' };
const badRequest: Expected = { status: 400, error: 'BadRequest' };
/** Refused by the HTTP layer (hapi, under sls offline) before any handler: its own JSON. */
const httpLayer400: Expected = { status: 400, error: 'Bad Request' };
const unauthorized: Expected = { status: 401, error: 'Unauthorized' };
const mtime = (value: string, name = `x-dfs-mtime ${JSON.stringify(value.length > 24 ? `${value.slice(0, 12)}… (${value.length} chars)` : value)}`) =>
  put('headers', name, '/files/hostile/mtime.txt', badRequest, { headers: [['x-dfs-mtime', value]] });

// ---------------------------------------------------------------------------------------------
// Through the API (sls offline)

export const API_CASES: ApiCase[] = [
  // Keys in the path
  put('keys', 'a 300-byte path segment (the local stack cannot store it)', `/files/${SEG300}`, invalidKey),
  get('keys', 'GET of a 300-byte path segment: 404, not 503', `/files/${SEG300}`, { status: 404, body: { status: 'NOT_FOUND', key: SEG300, unavailable: [] } }),
  { category: 'keys', name: 'DELETE of a 300-byte path segment', method: 'DELETE', path: `/files/${SEG300}`, expect: { status: 404, error: 'NotFound' } },
  put('keys', 'a 901-byte key', `/files/${KEY901}`, invalidKey),
  get('keys', 'a 10,000-byte key', `/files/${'q'.repeat(10_000)}`, invalidKey),
  get('keys', '3,001 one-letter segments', `/files/${'q/'.repeat(3000)}q`, invalidKey),
  put('keys', '".." between escaped slashes', '/files/hostile%2F..%2Fescape.txt', invalidKey),
  put('keys', 'a leading "../"', '/files/..%2Fescape.txt', invalidKey),
  put('keys', 'a leading "../" with the dots escaped too', '/files/%2E%2E%2Fescape.txt', invalidKey),
  put('keys', 'a "." segment between escaped slashes', '/files/hostile%2F.%2Fdot.txt', invalidKey),
  // RFC 3986 §5.2.4: every HTTP stack resolves dot segments (escaped dots too) before routing, so
  // the handler sees the name the URL resolves to; escaped slashes above keep them in the key.
  get('keys', 'raw "/../" resolves to the name the URL means (read only)', '/files/hostile/../fileA.txt', { status: 200, body: { status: 'SINGLE', key: 'fileA.txt' } }),
  get('keys', 'raw "/%2E%2E/" resolves too (read only)', '/files/hostile/%2E%2E/fileA.txt', { status: 200, body: { status: 'SINGLE', key: 'fileA.txt' } }),
  put('keys', 'an empty segment "//"', '/files/hostile//empty.txt', invalidKey),
  put('keys', 'an empty segment as "%2F%2F"', '/files/hostile%2F%2Fempty.txt', invalidKey),
  put('keys', 'a trailing "/" escaped', '/files/hostile/folder%2F', invalidKey),
  put('keys', 'a trailing "/"', '/files/hostile/folder/', invalidKey),
  {
    category: 'keys',
    name: 'DELETE with a trailing "/"',
    method: 'DELETE',
    path: '/files/hostile/victim.txt/',
    expect: invalidKey,
  },
  get('keys', 'a leading "/" (raw "//")', '/files//lead.txt', invalidKey),
  put('keys', 'a leading "/" escaped', '/files/%2Flead.txt', invalidKey),
  put('keys', 'NUL', '/files/hostile/nul%00.txt', invalidKey),
  put('keys', 'a C0 control (0x01)', '/files/hostile/soh%01.txt', invalidKey),
  put('keys', 'a tab', '/files/hostile/tab%09.txt', invalidKey),
  put('keys', 'a line feed', '/files/hostile/lf%0A.txt', invalidKey),
  put('keys', 'a carriage return', '/files/hostile/cr%0D.txt', invalidKey),
  put('keys', 'DEL', '/files/hostile/del%7F.txt', invalidKey),
  put('keys', 'a C1 control (U+009B, CSI)', '/files/hostile/csi%C2%9B.txt', invalidKey),
  put('keys', 'a backslash, escaped', '/files/hostile%5Cback.txt', invalidKey),
  put('keys', 'a raw backslash', '/files/hostile\\back.txt', invalidKey, {
    known:
      'the local HTTP layer parses the request target as a WHATWG URL, where "\\" is "/": "hostile\\back.txt" is stored as "hostile/back.txt" (200), another name than the one sent, instead of 400 InvalidKey',
  }),
  get('keys', 'an unpaired surrogate, percent-encoded (%ED%A0%80)', '/files/hostile/%ED%A0%80.txt', httpLayer400),
  get('keys', 'a bad percent-escape (%ZZ)', '/files/hostile/%ZZ.txt', httpLayer400),
  get('keys', 'a truncated UTF-8 sequence (%E2%82)', '/files/hostile/%E2%82.txt', httpLayer400),

  // Keys in JSON bodies
  post('keys', 'POST /uploads: an unpaired high surrogate in the JSON key', '/uploads', '{"key":"hostile/\\ud800.bin","size":10}', invalidKey),
  post('keys', 'POST /uploads: an unpaired low surrogate alone', '/uploads', '{"key":"\\udc00","size":10}', invalidKey),
  post('keys', 'POST /uploads: key "../x"', '/uploads', json({ key: '../x', size: 10 }), invalidKey),
  post('keys', 'POST /uploads: a trailing "/"', '/uploads', json({ key: 'hostile/', size: 10 }), invalidKey),
  post('keys', 'POST /uploads: an empty key', '/uploads', json({ key: '', size: 10 }), invalidKey),
  post('keys', 'POST /uploads: a 901-byte key', '/uploads', json({ key: KEY901, size: 10 }), invalidKey),
  post('keys', 'POST /uploads: a 300-byte path segment', '/uploads', json({ key: SEG300, size: 10 }), invalidKey),
  post('keys', 'POST /uploads: NUL in the key', '/uploads', json({ key: 'a\u0000b', size: 10 }), invalidKey),
  post('keys', 'POST /uploads: a backslash in the key', '/uploads', json({ key: 'a\\b', size: 10 }), invalidKey),
  post('keys', 'POST /uploads: a key that is a number', '/uploads', json({ key: 123, size: 10 }), badRequest),
  post('keys', 'POST /uploads/sign: key "../x" with a real upload id', '/uploads/sign', (c) => json({ key: '../x', uploads: c.upload.uploads, parts: [1] }), invalidKey),
  post('keys', 'POST /uploads/complete: key "a//b"', '/uploads/complete', (c) => json({ key: 'a//b', uploads: c.upload.uploads.map((u) => ({ ...u, parts: [{ n: 1, etag: '"x"' }] })) }), invalidKey),
  post('keys', 'POST /reconcile/apply: key "../tokens/local"', '/reconcile/apply', json({ entries: [{ key: '../tokens/local' }] }), invalidKey),

  // Query flags: unknown ones are ignored, bad values of known ones refused
  get('query', 'meta=yes', '/files/fileA.txt?meta=yes', badRequest),
  get('query', 'meta=TRUE', '/files/fileA.txt?meta=TRUE', badRequest),
  get('query', 'meta= (empty)', '/files/fileA.txt?meta=', badRequest),
  get('query', 'meta twice (1, 0)', '/files/fileA.txt?meta=1&meta=0', badRequest),
  get('query', 'limit=0', '/files?limit=0', badRequest),
  get('query', 'limit=-1', '/files?limit=-1', badRequest),
  get('query', 'limit=abc', '/files?limit=abc', badRequest),
  get('query', 'limit=1001', '/files?limit=1001', badRequest),
  get('query', 'limit=1e3', '/files?limit=1e3', badRequest),
  get('query', 'limit of 20 digits', '/files?limit=99999999999999999999', badRequest),
  get('query', 'limit twice', '/files?limit=2&limit=3', badRequest),
  get('query', 'after= not a cursor', '/files?after=zzz', badRequest),
  get('query', 'after= a cursor with another key, its MAC kept', '/files', badRequest, {
    path: (c) => `/files?after=${Buffer.from(json({ k: 'zzz', p: '' })).toString('base64url')}.${c.cursor.split('.')[1]}`,
  }),
  get('query', 'after= a cursor whose payload is not JSON', '/files?after=bm90IGpzb24.AAAAAAAAAAAAAAAAAAAAAA', badRequest),
  get('query', 'after= a real cursor with another prefix', '/files', badRequest, { path: (c) => `/files?prefix=file&after=${c.cursor}` }),
  get('query', 'after= a real cursor cut short', '/files', badRequest, { path: (c) => `/files?after=${c.cursor.slice(0, -1)}` }),
  get('query', 'an unknown parameter is ignored', '/files?bogus=1&limit=1', { status: 200 }),
  get('query', 'prefix=NUL lists nothing', '/files?prefix=%00', { status: 200, body: { files: [], next: null } }),
  put('query', 'to=server9', '/files/hostile/to.txt?to=server9', { status: 400, error: 'UnknownStore' }),
  put('query', 'to=ALL', '/files/hostile/to.txt?to=ALL', { status: 400, error: 'UnknownStore' }),
  put('query', 'to=server1,server2', '/files/hostile/to.txt?to=server1,server2', { status: 400, error: 'UnknownStore' }),
  put('query', 'to= (empty)', '/files/hostile/empty-to.txt?to=', { status: 400, error: 'UnknownStore' }),
  put('query', 'touch=2', '/files/hostile/touch.txt?touch=2', badRequest),
  put('query', 'touch=yes', '/files/hostile/touch.txt?touch=yes', badRequest),
  post('query', 'POST /reconcile?dryRun=TRUE: nothing reconciled', '/reconcile?dryRun=TRUE', '', badRequest),
  post('query', 'POST /reconcile?dryRun=yes', '/reconcile?dryRun=yes', '', badRequest),
  post('query', 'POST /reconcile?dryRun= (empty)', '/reconcile?dryRun=', '', badRequest),
  post('query', 'POST /reconcile?dryRun=1&force=maybe', '/reconcile?dryRun=1&force=maybe', '', badRequest),
  post('query', 'POST /reconcile/apply?force=TRUE', '/reconcile/apply?force=TRUE', json({ entries: [{ key: 'fileB.txt' }] }), badRequest),
  get('query', 'GET /events?after=x', '/events?after=x', badRequest),
  get('query', 'GET /events?after=../tokens/local', '/events?after=..%2Ftokens%2Flocal', badRequest),

  // Headers: x-dfs-mtime
  mtime('4102444800000', 'x-dfs-mtime in the year 2100'),
  mtime('8640000000000001', 'x-dfs-mtime 8.64e15+1 (past the last JS date)'),
  mtime('0x10'),
  mtime('1e12'),
  mtime('-5'),
  mtime('0'),
  mtime('1.5'),
  mtime('1 000', 'x-dfs-mtime with a space inside'),
  mtime('Infinity'),
  mtime('NaN'),
  mtime('1'.repeat(5000), 'x-dfs-mtime of 5,000 digits'),
  put('headers', 'x-dfs-mtime of 20,000 digits (over the HTTP layer\'s header limit)', '/files/hostile/mtime.txt', { status: 400 }, { headers: [['x-dfs-mtime', '1'.repeat(20_000)]] }),
  put('headers', 'x-dfs-mtime 6 minutes ahead', '/files/hostile/mtime.txt', badRequest, { headers: () => [['x-dfs-mtime', String(Date.now() + 6 * 60_000)]] }),
  put('headers', 'Content-Type text/plain with bytes that are not UTF-8: refused, not stored altered', '/files/hostile/latin1.txt', badRequest, {
    headers: [['Content-Type', 'text/plain']],
    body: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0xff]),
    writes: /^s3-dfs-local-(server\d|control)\//,
  }),

  // Authorization
  get('auth', 'no Authorization header', '/files/fileA.txt', unauthorized, { auth: null }),
  get('auth', 'an empty Authorization header', '/files/fileA.txt', unauthorized, { auth: '' }),
  get('auth', 'the token without "Bearer"', '/files/fileA.txt', unauthorized, { auth: (c) => c.token }),
  get('auth', '"Token" instead of "Bearer"', '/files/fileA.txt', unauthorized, { auth: (c) => `Token ${c.token}` }),
  get('auth', '"Bearer" alone', '/files/fileA.txt', unauthorized, { auth: 'Bearer' }),
  get('auth', 'Basic credentials', '/files/fileA.txt', unauthorized, { auth: 'Basic dXNlcjpwYXNz' }),
  // RFC 7235: the scheme is case-insensitive and whitespace-separated; lib/tokens.ts takes both.
  get('auth', 'two spaces after "Bearer": accepted', '/files/fileA.txt?meta=1', { status: 200 }, { auth: (c) => `Bearer  ${c.token}` }),
  get('auth', 'lowercase "bearer": accepted', '/files/fileA.txt?meta=1', { status: 200 }, { auth: (c) => `bearer ${c.token}` }),
  get('auth', 'a tab after "Bearer": accepted', '/files/fileA.txt?meta=1', { status: 200 }, { auth: (c) => `Bearer\t${c.token}` }),
  get('auth', 'a line break inside the token (refused by the HTTP layer)', '/files/fileA.txt', { status: 400 }, { auth: (c) => `Bearer ${c.token.slice(0, 20)}\n${c.token.slice(20)}` }),
  get('auth', 'a 10 KB token', '/files/fileA.txt', unauthorized, { auth: bearer('A'.repeat(10_240)) }),
  get('auth', 'a 10 KB token in the token format', '/files/fileA.txt', unauthorized, { auth: bearer(`dfs_local_${'A'.repeat(10_230)}`) }),
  get('auth', 'a token of another stack (same name, another secret)', '/files/fileA.txt', unauthorized, { auth: bearer(OTHER_STACK_TOKEN) }),
  get('auth', 'a wrong secret', '/files/fileA.txt', unauthorized, { auth: bearer(WRONG_TOKEN) }),
  get('auth', 'the token with a character more', '/files/fileA.txt', unauthorized, { auth: (c) => bearer(`${c.token}x`) }),
  get('auth', 'the token with its last character dropped', '/files/fileA.txt', unauthorized, { auth: (c) => bearer(c.token.slice(0, -1)) }),
  get('auth', 'the token twice in one header', '/files/fileA.txt', unauthorized, { auth: (c) => `Bearer ${c.token} ${c.token}` }),
  get('auth', 'a token naming a path ("dfs_../tokens/local_…")', '/files/fileA.txt', unauthorized, { auth: bearer(`dfs_../tokens/local_${'A'.repeat(43)}`) }),
  get('auth', 'a revoked token', '/files/fileA.txt', unauthorized, { auth: (c) => bearer(c.revokedToken) }),
  get('auth', 'two Authorization headers, a wrong one last', '/files/fileA.txt', unauthorized, { headers: [['Authorization', bearer(WRONG_TOKEN)]] }),
  get('auth', 'two Authorization headers, the right one last', '/files/fileA.txt', unauthorized, {
    auth: bearer(WRONG_TOKEN),
    headers: (c) => [['Authorization', bearer(c.token)]],
    known:
      'a repeated Authorization header is one credential too many: API Gateway (payload 2.0) joins repeats with a comma, which is no token (401); serverless-offline keeps the last one and answers 200',
  }),
  put('auth', 'a read token on PUT', '/files/fileA.txt', { status: 403, error: 'Forbidden' }, { auth: (c) => bearer(c.readToken) }),
  { category: 'auth', name: 'a read token on DELETE', method: 'DELETE', path: '/files/fileA.txt', auth: (c) => bearer(c.readToken), expect: { status: 403, error: 'Forbidden' } },
  post('auth', 'a read token on POST /tokens', '/tokens', json({ name: 'escalate', scope: 'write' }), { status: 403, error: 'Forbidden' }, { auth: (c) => bearer(c.readToken) }),
  post('auth', 'a read token on POST /reconcile', '/reconcile', '', { status: 403, error: 'Forbidden' }, { auth: (c) => bearer(c.readToken) }),

  // JSON bodies
  post('json', 'not JSON', '/uploads', '{"key":', badRequest),
  post('json', 'no body', '/uploads', '', badRequest),
  post('json', 'null', '/uploads', 'null', badRequest),
  post('json', 'an array', '/uploads', '[]', badRequest),
  post('json', 'a string', '/uploads', '"hostile"', badRequest),
  post('json', 'a number past double range', '/uploads', '{"key":"hostile/n.bin","size":1e400}', badRequest),
  post('json', '200,000 nested arrays', '/uploads', `${'['.repeat(200_000)}${']'.repeat(200_000)}`, badRequest),
  post('json', 'over 1 MiB: POST /uploads', '/uploads', json({ key: 'hostile/big.bin', size: 10, pad: 'x'.repeat(MiB) }), { status: 413, error: 'PayloadTooLarge' }),
  post('json', 'over 1 MiB: POST /tokens', '/tokens', json({ name: 'big', pad: 'x'.repeat(MiB) }), { status: 413, error: 'PayloadTooLarge' }),
  post('json', 'over 1 MiB: POST /reconcile/apply', '/reconcile/apply', json({ entries: [{ key: 'fileA.txt', pad: 'x'.repeat(MiB) }] }), { status: 413, error: 'PayloadTooLarge' }),
  post('json', 'invalid UTF-8 inside the JSON (sent as application/octet-stream)', '/uploads', Buffer.concat([Buffer.from('{"key":"hostile/'), Buffer.from([0xff, 0xfe]), Buffer.from('.bin","size":10}')]), badRequest, {
    headers: [['Content-Type', 'application/octet-stream']],
  }),
  post('json', 'invalid UTF-8 inside the JSON (sent as application/json)', '/uploads', Buffer.concat([Buffer.from('{"key":"hostile/'), Buffer.from([0xff, 0xfe]), Buffer.from('.bin","size":10}')]), badRequest),
  post('json', 'a token name given twice, the reserved one last', '/tokens', '{"name":"fine","name":"lambda-invoke"}', badRequest),

  // Upload bodies
  post('uploads', 'size -1', '/uploads', json({ key: 'hostile/u.bin', size: -1 }), badRequest),
  post('uploads', 'size 1.5', '/uploads', json({ key: 'hostile/u.bin', size: 1.5 }), badRequest),
  post('uploads', 'size as a string', '/uploads', json({ key: 'hostile/u.bin', size: '10' }), badRequest),
  post('uploads', 'size 6 TiB (over S3\'s 5 TiB)', '/uploads', json({ key: 'hostile/u.bin', size: 6 * 1024 ** 4 }), badRequest),
  post('uploads', 'no size', '/uploads', json({ key: 'hostile/u.bin' }), badRequest),
  post('uploads', 'no key', '/uploads', json({ size: 10 }), badRequest),
  post('uploads', 'partSize 1 byte', '/uploads', json({ key: 'hostile/u.bin', size: 10, partSize: 1 }), badRequest),
  post('uploads', 'partSize 6 GiB', '/uploads', json({ key: 'hostile/u.bin', size: 10, partSize: 6 * 1024 ** 3 }), badRequest),
  post('uploads', 'partSize so small 10,001 parts are needed', '/uploads', json({ key: 'hostile/u.bin', size: 10_001 * 5 * MiB, partSize: 5 * MiB }), badRequest),
  post('uploads', 'mtime in the year 2100', '/uploads', json({ key: 'hostile/u.bin', size: 10, mtime: 4102444800000 }), badRequest),
  post('uploads', 'mtime -1', '/uploads', json({ key: 'hostile/u.bin', size: 10, mtime: -1 }), badRequest),
  post('uploads', 'mtime 0', '/uploads', json({ key: 'hostile/u.bin', size: 10, mtime: 0 }), badRequest),
  post('uploads', 'to server9', '/uploads', json({ key: 'hostile/u.bin', size: 10, to: 'server9' }), { status: 400, error: 'UnknownStore' }),
  post('uploads', 'touch "yes"', '/uploads', json({ key: 'hostile/u.bin', size: 10, touch: 'yes' }), badRequest),
  post('uploads', 'sign: 17 uploads', '/uploads/sign', json({ key: 'hostile/u.bin', uploads: Array.from({ length: 17 }, (_, i) => ({ store: `server${i}`, uploadId: `u${i}` })), parts: [1] }), badRequest),
  post('uploads', 'sign: 1,001 parts', '/uploads/sign', (c) => json({ key: c.upload.key, uploads: c.upload.uploads, parts: Array.from({ length: 1001 }, (_, i) => i + 1) }), badRequest),
  post('uploads', 'sign: one store twice', '/uploads/sign', (c) => json({ key: c.upload.key, uploads: [c.upload.uploads[0], c.upload.uploads[0]], parts: [1] }), badRequest),
  post('uploads', 'sign: one part twice', '/uploads/sign', (c) => json({ key: c.upload.key, uploads: c.upload.uploads, parts: [1, 1] }), badRequest),
  post('uploads', 'sign: part 0', '/uploads/sign', (c) => json({ key: c.upload.key, uploads: c.upload.uploads, parts: [0] }), badRequest),
  post('uploads', 'sign: part 10,001', '/uploads/sign', (c) => json({ key: c.upload.key, uploads: c.upload.uploads, parts: [10_001] }), badRequest),
  post('uploads', 'sign: an empty upload id', '/uploads/sign', json({ key: 'hostile/u.bin', uploads: [{ store: 'server1', uploadId: '' }], parts: [1] }), badRequest),
  post('uploads', 'sign: a 1,025-character upload id', '/uploads/sign', json({ key: 'hostile/u.bin', uploads: [{ store: 'server1', uploadId: 'u'.repeat(1025) }], parts: [1] }), badRequest),
  post('uploads', 'sign: an unknown store', '/uploads/sign', json({ key: 'hostile/u.bin', uploads: [{ store: 'server9', uploadId: 'u' }], parts: [1] }), { status: 400, error: 'UnknownStore' }),
  // Signing is arithmetic on the id: no store is asked, so a forged id gets URLs, which the store refuses.
  post('uploads', 'sign: a forged upload id gets URLs the store refuses', '/uploads/sign', json({ key: 'hostile/forged.bin', uploads: [{ store: 'server1', uploadId: 'forged' }], parts: [1] }), { status: 200 }, {
    check: async (answer: { urls: Record<string, string[]> }) => {
      const res = await fetch(answer.urls.server1![0]!, { method: 'PUT', body: 'forged part' });
      await res.arrayBuffer();
      if (res.status !== 404) throw new Error(`a part PUT to a forged upload answered ${res.status}, not 404 NoSuchUpload`);
    },
  }),
  post('uploads', 'complete: a forged upload id', '/uploads/complete', json({ key: 'hostile/forged.bin', uploads: [{ store: 'server1', uploadId: 'forged', parts: [{ n: 1, etag: '"0123456789abcdef0123456789abcdef"' }] }] }), badRequest),
  post('uploads', 'complete: parts never uploaded (a real upload): no object left', '/uploads/complete', (c) => json({ key: c.upload.key, uploads: c.upload.uploads.map((u) => ({ ...u, parts: [{ n: 1, etag: '"0123456789abcdef0123456789abcdef"' }] })) }), badRequest),
  post('uploads', 'complete: a real upload id under another key', '/uploads/complete', (c) => json({ key: 'hostile/elsewhere.bin', uploads: c.upload.uploads.map((u) => ({ ...u, parts: [{ n: 1, etag: '"0123456789abcdef0123456789abcdef"' }] })) }), badRequest),
  post('uploads', 'complete: one store twice', '/uploads/complete', (c) => json({ key: c.upload.key, uploads: [c.upload.uploads[0], c.upload.uploads[0]].map((u) => ({ ...u, parts: [{ n: 1, etag: '"x"' }] })) }), badRequest),
  post('uploads', 'complete: no parts', '/uploads/complete', (c) => json({ key: c.upload.key, uploads: c.upload.uploads.map((u) => ({ ...u, parts: [] })) }), badRequest),
  post('uploads', 'complete: an empty ETag', '/uploads/complete', (c) => json({ key: c.upload.key, uploads: c.upload.uploads.map((u) => ({ ...u, parts: [{ n: 1, etag: '' }] })) }), badRequest),
  post('uploads', 'complete: no uploads', '/uploads/complete', json({ key: 'hostile/u.bin', uploads: [] }), badRequest),
  post('uploads', 'abort: a forged upload id', '/uploads/abort', json({ key: 'hostile/forged.bin', uploads: [{ store: 'server1', uploadId: 'forged' }] }), badRequest),

  // Reconcile bodies
  post('reconcile', 'apply: a forged delete entry (deletedAt far in the future) deletes nothing', '/reconcile/apply', json({ entries: [{ key: 'fileA.txt', action: 'delete', from: ['server1', 'server2'], deletedAt: '2999-01-01T00:00:00.000Z', reason: 'forged' }] }), { status: 200, body: { failed: [] } }),
  post('reconcile', 'apply: a forged copy entry onto a name nobody holds writes nothing', '/reconcile/apply', json({ entries: [{ key: 'hostile/nobody.txt', action: 'copy', from: 'server1', to: ['server2'] }] }), { status: 200, body: { failed: [] } }),
  post('reconcile', 'apply: 101 entries', '/reconcile/apply', json({ entries: Array.from({ length: 101 }, (_, i) => ({ key: `hostile/k${i}` })) }), badRequest),
  post('reconcile', 'apply: no entries', '/reconcile/apply', json({ entries: [] }), badRequest),
  post('reconcile', 'apply: entries not an array', '/reconcile/apply', json({ entries: { key: 'fileA.txt' } }), badRequest),
  post('reconcile', 'apply: an entry without a key', '/reconcile/apply', json({ entries: [{ action: 'delete' }] }), badRequest),
  post('reconcile', 'apply: no body', '/reconcile/apply', '', badRequest),

  // Token names and token routes
  post('tokens', 'an uppercase name', '/tokens', json({ name: 'UPPER' }), badRequest),
  post('tokens', 'a 41-character name', '/tokens', json({ name: 'a'.repeat(41) }), badRequest),
  post('tokens', 'the reserved name lambda-invoke', '/tokens', json({ name: 'lambda-invoke' }), badRequest),
  post('tokens', 'the reserved name anonymous', '/tokens', json({ name: 'anonymous' }), badRequest),
  post('tokens', 'an empty name', '/tokens', json({ name: '' }), badRequest),
  post('tokens', 'a name with a path', '/tokens', json({ name: '../local' }), badRequest),
  post('tokens', 'a name starting with "-"', '/tokens', json({ name: '-x' }), badRequest),
  post('tokens', 'a name that is a number', '/tokens', json({ name: 7 }), badRequest),
  post('tokens', 'scope admin', '/tokens', json({ name: 'hostile', scope: 'admin' }), badRequest),
  post('tokens', 'an unknown field', '/tokens', json({ name: 'hostile', hash: '00' }), badRequest),
  post('tokens', 'a __proto__ field', '/tokens', '{"__proto__":{"scope":"write"},"name":"hostile"}', badRequest),
  post('tokens', 'a taken name', '/tokens', json({ name: 'local' }), { status: 409, error: 'Conflict' }),
  { category: 'tokens', name: 'DELETE /tokens/..%2Flocal', method: 'DELETE', path: '/tokens/..%2Flocal', expect: badRequest },
  { category: 'tokens', name: 'DELETE /tokens/UPPER', method: 'DELETE', path: '/tokens/UPPER', expect: badRequest },
  { category: 'tokens', name: 'DELETE /tokens/nosuch', method: 'DELETE', path: '/tokens/nosuch', expect: { status: 404, error: 'NotFound' } },

  // Locks
  post('locks', 'lock "../x"', '/locks/..%2Fx', '', invalidKey),
  post('locks', 'lock a key with a trailing "/" escaped', '/locks/fileA.txt%2F', '', invalidKey),
  post('locks', 'lock a name no store holds', '/locks/hostile/nobody.txt', '', { status: 404, error: 'NotFound' }),
  post('locks', 'lock at store=server9', '/locks/fileA.txt?store=server9', '', { status: 400, error: 'UnknownStore' }),
  post('locks', 'ttl -1', '/locks/fileA.txt', json({ ttl: -1 }), badRequest),
  post('locks', 'ttl 8 days', '/locks/fileA.txt', json({ ttl: 8 * 86_400 }), badRequest),
  post('locks', 'ttl 1e3 as a string', '/locks/fileA.txt', json({ ttl: '1e3' }), badRequest),
  post('locks', 'a 201-character reason', '/locks/fileA.txt', json({ reason: 'r'.repeat(201) }), badRequest),
  post('locks', 'an unknown field (holder)', '/locks/fileA.txt', json({ holder: 'someone-else' }), badRequest),
  post('locks', 'a body that is not JSON', '/locks/fileA.txt', '{', badRequest),
  post('locks', 'a read token', '/locks/fileA.txt', '', { status: 403, error: 'Forbidden' }, { auth: (c) => bearer(c.readToken) }),
  { category: 'locks', name: 'unlock what is not locked', method: 'DELETE', path: '/locks/fileA.txt', expect: { status: 404, error: 'NotFound' } },
  { category: 'locks', name: 'unlock with force=yes', method: 'DELETE', path: '/locks/fileA.txt?force=yes', expect: badRequest },
  { category: 'locks', name: 'unlock with discard=TRUE', method: 'DELETE', path: '/locks/fileA.txt?discard=TRUE', expect: badRequest },
];

// ---------------------------------------------------------------------------------------------
// Direct invokes

const direct = (name: string, event: Lazy<unknown>, expect: Expected, more: Partial<InvokeCase> = {}): InvokeCase => ({ category: 'direct', name, event, expect, ...more });
/** An API Gateway (payload 2.0) event sent by invoke, with the stack's token unless `auth` says otherwise. */
const viaEvent = (name: string, method: string, rawPath: string, expect: Expected, opts: { auth?: (c: CorpusContext) => string | null; body?: string; isBase64Encoded?: boolean; headers?: Record<string, string> } = {}): InvokeCase => ({
  category: 'apigw-event',
  name,
  event: (c: CorpusContext) =>
    apiEvent(method, rawPath, {
      auth: opts.auth ? opts.auth(c) : bearer(c.token),
      ...(opts.body !== undefined ? { body: opts.body, isBase64Encoded: opts.isBase64Encoded ?? false } : {}),
      ...(opts.headers ? { headers: opts.headers } : {}),
    }),
  expect,
});

export const INVOKE_CASES: InvokeCase[] = [
  // The request shape: the handler sees the path as sent, so what HTTP resolves is refused here.
  direct('a raw "/../" in the path', { method: 'GET', path: '/files/hostile/../fileA.txt' }, invalidKey),
  direct('a raw "/./" in the path', { method: 'PUT', path: '/files/hostile/./dot.txt', body: 'x' }, invalidKey),
  direct('the path "/files/.."', { method: 'DELETE', path: '/files/..' }, invalidKey),
  direct('a trailing "/"', { method: 'PUT', path: '/files/hostile/folder/', body: 'x' }, invalidKey),
  direct('a trailing "/" on DELETE', { method: 'DELETE', path: '/files/hostile/victim.txt/' }, invalidKey),
  direct('a raw backslash', { method: 'PUT', path: '/files/hostile\\back.txt', body: 'x' }, invalidKey),
  direct('"//"', { method: 'PUT', path: '/files/hostile//x.txt', body: 'x' }, invalidKey),
  direct('a 300-byte path segment', { method: 'PUT', path: `/files/${SEG300}`, body: 'x' }, invalidKey),
  direct('an unpaired surrogate in the path', { method: 'PUT', path: '/files/hostile/\ud800.txt', body: 'x' }, invalidKey),
  direct('isBase64Encoded with a body that is not base64', { method: 'PUT', path: '/files/hostile/b64.txt', body: 'not base64!', isBase64Encoded: true }, badRequest),
  direct('isBase64Encoded with base64 cut short', { method: 'PUT', path: '/files/hostile/b64.txt', body: 'aGVsbG8', isBase64Encoded: true }, badRequest),
  direct('invalid UTF-8 inside a JSON body (base64)', { method: 'POST', path: '/uploads', body: Buffer.concat([Buffer.from('{"key":"hostile/'), Buffer.from([0xc3, 0x28]), Buffer.from('.bin","size":1}')]).toString('base64'), isBase64Encoded: true }, badRequest),
  direct('a body that is a number', { method: 'PUT', path: '/files/hostile/n.txt', body: 42 }, badRequest),
  direct('method "G E T"', { method: 'G E T', path: '/files' }, badRequest),
  direct('method a number', { method: 7, path: '/files' }, badRequest),
  direct('a path without "/"', { method: 'GET', path: 'files' }, badRequest),
  direct('no path', { method: 'GET' }, badRequest),
  direct('a query value that is a number', { method: 'GET', path: '/files', query: { limit: 5 } }, badRequest),
  direct('headers an array', { method: 'GET', path: '/files', headers: [['x', 'y']] }, badRequest),
  direct('a header value that is a number', { method: 'PUT', path: '/files/hostile/h.txt', headers: { 'x-dfs-mtime': 5 }, body: 'x' }, badRequest),
  direct('x-dfs-mtime " 1000" (no HTTP layer to trim it)', { method: 'PUT', path: '/files/hostile/m.txt', headers: { 'x-dfs-mtime': ' 1000' }, body: 'x' }, badRequest),
  direct('x-dfs-mtime "1e12"', { method: 'PUT', path: '/files/hostile/m.txt', headers: { 'x-dfs-mtime': '1e12' }, body: 'x' }, badRequest),
  direct('POST /reconcile?dryRun=TRUE', { method: 'POST', path: '/reconcile', query: { dryRun: 'TRUE' } }, badRequest),
  direct('the reserved token name lambda-invoke', { method: 'POST', path: '/tokens', body: { name: 'lambda-invoke' } }, badRequest),
  direct('an unknown route', { method: 'GET', path: '/admin' }, { status: 404, error: 'NoRoute' }),
  direct('the event a number', 42, badRequest),
  direct('the event null', null, badRequest),
  direct('the event an array', [], badRequest),
  direct('the event a string that is not JSON', 'GET /files', badRequest),
  direct('a REST API (v1) event', { httpMethod: 'GET', path: '/files', resource: '/files', headers: {}, requestContext: { stage: 'prod' } }, badRequest),
  direct('an ALB event', { httpMethod: 'GET', path: '/files', requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y' } } }, badRequest),
  // API Gateway's shape sent by invoke: as from API Gateway, so it needs a token.
  { category: 'apigw-event', name: 'requestContext without http', event: { version: '2.0', rawPath: '/files', requestContext: {} }, expect: badRequest },
  { category: 'apigw-event', name: 'requestContext null', event: { version: '2.0', rawPath: '/files', requestContext: null }, expect: badRequest },
  viaEvent('no token', 'GET', '/files', unauthorized, { auth: () => null }),
  viaEvent('a wrong token', 'DELETE', '/files/fileA.txt', unauthorized, { auth: () => bearer(WRONG_TOKEN) }),
  viaEvent('a token with a line break inside', 'GET', '/files', unauthorized, { auth: (c) => `Bearer ${c.token.slice(0, 20)}\n${c.token.slice(20)}` }),
  viaEvent('a read token on PUT', 'PUT', '/files/fileA.txt', { status: 403, error: 'Forbidden' }, { auth: (c) => bearer(c.readToken), body: 'x' }),
  viaEvent('a bad percent-escape in rawPath', 'GET', '/files/%ZZ', badRequest),
  viaEvent('an unpaired surrogate in rawPath', 'GET', '/files/%ED%A0%80', badRequest),
  viaEvent('a trailing "/" in rawPath', 'PUT', '/files/hostile/folder/', invalidKey, { body: 'x' }),
  viaEvent('a raw backslash in rawPath', 'PUT', '/files/hostile\\back.txt', invalidKey, { body: 'x' }),
  viaEvent('isBase64Encoded with a body that is not base64', 'PUT', '/files/hostile/b64.txt', badRequest, { body: '%%%%', isBase64Encoded: true }),
  viaEvent('invalid UTF-8 inside a JSON body', 'POST', '/uploads', badRequest, { body: Buffer.concat([Buffer.from('{"key":"hostile/'), Buffer.from([0xff]), Buffer.from('.bin","size":1}')]).toString('base64'), isBase64Encoded: true }),
  viaEvent('x-dfs-mtime in the year 2100', 'PUT', '/files/hostile/m.txt', badRequest, { body: 'x', headers: { 'x-dfs-mtime': '4102444800000' } }),
];

// ---------------------------------------------------------------------------------------------
// The CLI

const mkfifo = (p: string) => execFileSync('mkfifo', [p]);
const file = (dir: string, name: string, text = 'hostile\n') => writeFileSync(join(dir, name), text);
const cli = (category: CliCategory, name: string, args: Lazy<string[]>, expect: CliCase['expect'], more: Partial<CliCase> = {}): CliCase => ({ category, name, args, expect, ...more });
const usage = (error = 'Usage') => ({ exit: 2, error });

export const CLI_CASES: CliCase[] = [
  // Flags: exit 2 before anything is sent
  cli('cli-flags', 'an unknown option', ['get', 'fileA.txt', '--bogus'], usage()),
  cli('cli-flags', 'an unknown command', ['fetch', 'fileA.txt'], usage()),
  cli('cli-flags', 'get without a name', ['get'], usage()),
  cli('cli-flags', 'get with two names', ['get', 'fileA.txt', 'fileB.txt'], usage()),
  cli('cli-flags', '--via ftp', ['get', 'fileA.txt', '--via', 'ftp'], usage()),
  cli('cli-flags', 'watch --count 0', ['watch', '--count', '0'], usage()),
  cli('cli-flags', 'watch --timeout -1', ['watch', '--timeout', '-1'], usage()),
  cli('cli-flags', 'watch --timeout NaN', ['watch', '--timeout', 'NaN'], usage()),
  cli('cli-flags', 'ls --limit (no such option)', ['ls', '--limit', '5'], usage()),
  cli('cli-flags', 'put --touch=1', ['put', 'f.txt', '--touch=1'], usage(), { setup: (d) => file(d, 'f.txt') }),
  cli('cli-flags', 'get -o without a folder', ['get', 'fileA.txt', '-o'], usage()),
  cli('cli-flags', 'rm without -y and no terminal', ['rm', 'fileA.txt'], usage('ConfirmationNeeded')),
  cli('cli-flags', 'token revoke without -y and no terminal', ['token', 'revoke', 'local'], usage('ConfirmationNeeded')),
  cli('cli-flags', '--endpoint ftp://…', ['ls', '--endpoint', 'ftp://127.0.0.1/'], usage('BadConfig')),
  cli('cli-flags', '--endpoint with a user name and password', ['ls', '--endpoint', 'http://ann:secret@127.0.0.1:9/'], usage('BadConfig')),
  cli('cli-flags', 'put --to server9 (the server refuses, nothing stored)', ['put', 'f.txt', '--as', 'hostile/to.txt', '--to', 'server9'], usage('UnknownStore'), { setup: (d) => file(d, 'f.txt'), sends: true }),
  cli('cli-flags', 'put --to ALL', ['put', 'f.txt', '--as', 'hostile/to.txt', '--to', 'ALL'], usage('UnknownStore'), { setup: (d) => file(d, 'f.txt'), sends: true }),
  cli('cli-flags', 'put --to "" (empty)', ['put', 'f.txt', '--as', 'hostile/cli-empty-to.txt', '--to', ''], { exit: 2 }, {
    setup: (d) => file(d, 'f.txt'),
    sends: true,
  }),
  cli('cli-flags', 'get --resolve with a store that holds no copy', ['get', 'fileA.txt', '--resolve', 'server9'], usage('UnknownStore'), { sends: true }),

  // Keys: refused by the CLI before any request
  cli('cli-keys', 'get ../x', ['get', '../x'], usage('InvalidKey')),
  cli('cli-keys', 'get a//b', ['get', 'a//b'], usage('InvalidKey')),
  // A final "/" asks for every file under that prefix (issue 12): none here, so exit 3, nothing written.
  cli('cli-keys', 'get a trailing "/": a prefix nothing is under', ['get', 'hostile/nothing-under-this/'], { exit: 3 }, { sends: true }),
  cli('cli-keys', 'get a tab', ['get', 'tab\there'], usage('InvalidKey')),
  cli('cli-keys', 'get an escape sequence (ESC)', ['get', 'esc\u001b[2J'], usage('InvalidKey')),
  cli('cli-keys', 'rm .. -y', ['rm', '..', '-y'], usage('InvalidKey')),
  cli('cli-keys', 'put --as a backslash', ['put', 'f.txt', '--as', 'a\\b'], usage('InvalidKey'), { setup: (d) => file(d, 'f.txt') }),
  cli('cli-keys', 'put --as ../outside', ['put', 'f.txt', '--as', '../outside.txt'], usage('InvalidKey'), { setup: (d) => file(d, 'f.txt') }),
  cli('cli-keys', 'put --as 901 bytes', ['put', 'f.txt', '--as', KEY901], usage('InvalidKey'), { setup: (d) => file(d, 'f.txt') }),
  cli('cli-keys', 'put --as a 300-byte segment (the server refuses)', ['put', 'f.txt', '--as', SEG300], usage('InvalidKey'), { setup: (d) => file(d, 'f.txt'), sends: true }),
  cli('cli-keys', 'get of a 300-byte segment: not found, exit 3', ['get', SEG300], { exit: 3 }, { sends: true }),

  // Local files to put: exit 2 before anything is sent
  cli('cli-files', 'put a missing file', ['put', 'missing.txt'], usage('NoSuchFile')),
  cli('cli-files', 'put ""', ['put', ''], usage('NoSuchFile')),
  cli('cli-files', 'put a folder', ['put', 'folder'], usage('NotAFile'), { setup: (d) => mkdirSync(join(d, 'folder')) }),
  cli('cli-files', 'put a FIFO (no writer: must not hang)', ['put', 'fifo'], usage('NotAFile'), { setup: (d) => mkfifo(join(d, 'fifo')) }),
  cli('cli-files', 'put a dangling symlink', ['put', 'dangling'], usage('NoSuchFile'), { setup: (d) => symlinkSync(join(d, 'nowhere'), join(d, 'dangling')) }),
  cli('cli-files', 'put a symlink to a folder', ['put', 'dirlink'], usage('NotAFile'), { setup: (d, o) => symlinkSync(o, join(d, 'dirlink')) }),
  cli('cli-files', 'put a symlink to /dev/zero', ['put', 'zero'], usage('NotAFile'), { setup: (d) => symlinkSync('/dev/zero', join(d, 'zero')) }),
  cli('cli-files', 'put /dev/stdin', ['put', '/dev/stdin', '--as', 'hostile/stdin.txt'], usage('NotAFile')),
  cli('cli-files', 'put a /proc file (size 0, content not): nothing sent', ['put', '/proc/self/status', '--as', 'hostile/status.txt'], { exit: 1, error: 'FileChanged' }),
  // root reads any file: the case means nothing then
  ...(process.getuid?.() === 0
    ? []
    : [cli('cli-files', 'put a file one cannot read', ['put', 'locked.txt'], usage('NoSuchFile'), { setup: (d) => writeFileSync(join(d, 'locked.txt'), 'secret', { mode: 0o000 }) })]),

  // Where `get` writes: nothing outside -o, nothing half-written, nothing replaced without --force
  cli('cli-output', '-o /proc/nope', ['get', 'fileA.txt', '-o', '/proc/nope'], { exit: 1 }, {
    sends: true,
    timeoutMs: 5_000,
  }),
  cli('cli-output', '-o /dev/null (a file, not a folder)', ['get', 'fileA.txt', '-o', '/dev/null'], { exit: 1, error: 'NotAFolder' }, { sends: true }),
  cli('cli-output', '-o under a regular file', ['get', 'fileA.txt', '-o', 'f.txt/sub'], { exit: 1, error: 'NotAFolder' }, { sends: true, setup: (d) => file(d, 'f.txt') }),
  cli('cli-output', '-o into a dangling symlink', ['get', 'fileA.txt', '-o', 'dangling/out'], { exit: 1 }, { sends: true, setup: (d) => symlinkSync(join(d, 'nowhere'), join(d, 'dangling')) }),
  cli('cli-output', 'a folder of the name is a symlink to outside', ['get', 'hostile/inner.txt', '-o', 'out'], { exit: 1, error: 'UnsafePath' }, {
    sends: true,
    setup: (d, o) => {
      mkdirSync(join(d, 'out'));
      symlinkSync(o, join(d, 'out', 'hostile'));
    },
  }),
  cli('cli-output', 'a folder of the name is a symlink to outside, with --force', ['get', 'hostile/inner.txt', '-o', 'out', '--force'], { exit: 1, error: 'UnsafePath' }, {
    sends: true,
    setup: (d, o) => {
      mkdirSync(join(d, 'out'));
      symlinkSync(o, join(d, 'out', 'hostile'));
    },
  }),
  cli('cli-output', 'the file is a symlink to a file outside: not overwritten', ['get', 'fileA.txt', '-o', 'out'], { exit: 1, error: 'Exists' }, {
    sends: true,
    setup: (d, o) => {
      file(o, 'secret.txt', 'keep me');
      mkdirSync(join(d, 'out'));
      symlinkSync(join(o, 'secret.txt'), join(d, 'out', 'fileA.txt'));
    },
  }),
  cli('cli-output', 'the file is a symlink outside, --force: the link is replaced, outside kept', ['get', 'fileA.txt', '-o', 'out', '--force'], { exit: 0 }, {
    sends: true,
    localChanges: ['~ out/fileA.txt'],
    setup: (d, o) => {
      file(o, 'secret.txt', 'keep me');
      mkdirSync(join(d, 'out'));
      symlinkSync(join(o, 'secret.txt'), join(d, 'out', 'fileA.txt'));
    },
  }),
  cli('cli-output', 'DIFFERENT: one version\'s file is a symlink outside: neither is written', ['get', 'fileB.txt', '-o', 'out'], { exit: 1, error: 'Exists' }, {
    sends: true,
    setup: (d, o) => {
      file(o, 'secret.txt', 'keep me');
      mkdirSync(join(d, 'out'));
      symlinkSync(join(o, 'secret.txt'), join(d, 'out', 'fileB.server2.txt'));
    },
  }),
  cli('cli-output', 'a folder stands where the file goes', ['get', 'fileA.txt', '-o', 'out', '--force'], { exit: 1, error: 'Exists' }, {
    sends: true,
    setup: (d) => mkdirSync(join(d, 'out', 'fileA.txt'), { recursive: true }),
  }),

  // Tokens
  cli('cli-tokens', 'DFS_TOKEN with a line break: refused before sending', ['ls'], usage('BadConfig'), { env: (c) => ({ DFS_TOKEN: `${c.token.slice(0, 20)}\n${c.token.slice(20)}` }) }),
  cli('cli-tokens', 'DFS_TOKEN with a space', ['ls'], usage('BadConfig'), { env: (c) => ({ DFS_TOKEN: `Bearer ${c.token}` }) }),
  cli('cli-tokens', 'a wrong token: exit 8', ['ls'], { exit: 8, error: 'Unauthorized' }, { env: { DFS_TOKEN: WRONG_TOKEN }, sends: true }),
  cli('cli-tokens', 'a token of another stack: exit 8', ['get', 'fileA.txt'], { exit: 8, error: 'Unauthorized' }, { env: { DFS_TOKEN: OTHER_STACK_TOKEN }, sends: true }),
  cli('cli-tokens', 'a 10 KB token: exit 8', ['ls'], { exit: 8, error: 'Unauthorized' }, { env: { DFS_TOKEN: 'A'.repeat(10_240) }, sends: true }),
  cli('cli-tokens', 'a revoked token: exit 8', ['ls'], { exit: 8, error: 'Unauthorized' }, { env: (c) => ({ DFS_TOKEN: c.revokedToken }), sends: true }),
  cli('cli-tokens', 'a read token on put: exit 8, nothing stored', ['put', 'f.txt', '--as', 'hostile/read.txt'], { exit: 8, error: 'Forbidden' }, { env: (c) => ({ DFS_TOKEN: c.readToken }), sends: true, setup: (d) => file(d, 'f.txt') }),
  cli('cli-tokens', 'a read token on rm: exit 8, nothing deleted', ['rm', 'fileA.txt', '-y'], { exit: 8, error: 'Forbidden' }, { env: (c) => ({ DFS_TOKEN: c.readToken }), sends: true }),
  cli('cli-tokens', 'a read token on sync: exit 8, nothing reconciled', ['sync'], { exit: 8, error: 'Forbidden' }, { env: (c) => ({ DFS_TOKEN: c.readToken }), sends: true }),
  cli('cli-tokens', 'token create UPPER: refused before sending', ['token', 'create', 'UPPER'], usage('InvalidTokenName')),
  cli('cli-tokens', 'token create with 41 characters', ['token', 'create', 'a'.repeat(41)], usage('InvalidTokenName')),
  cli('cli-tokens', 'token create lambda-invoke (the server refuses)', ['token', 'create', 'lambda-invoke'], usage('BadRequest'), { sends: true }),
];

export const CASE_COUNT = API_CASES.length + INVOKE_CASES.length + CLI_CASES.length;
