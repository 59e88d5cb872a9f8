/**
 * The hostile-input corpus (test/corpus/hostile.ts) against the real local stack: requests through
 * API Gateway (sls offline), direct invokes of the API function, and the real `dfs`. Every case
 * gets its status or exit code and error code, never a crash, a 5xx or emulator text; after each,
 * every bucket (stores, control, logs) is as it was, and for the CLI the local folders too and,
 * unless the command may ask the API, not one request sent. One stack for the file, cases in order.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../lib/config';
import { startLocalStack, type LocalStack } from '../../scripts/stack';
import { API_CASES, CASE_COUNT, CLI_CASES, INVOKE_CASES, resolveLazy, type ApiCase, type CliCase, type CorpusContext, type Expected, type InvokeCase } from '../corpus/hostile';
import {
  lambdaInvoker,
  runCli,
  sendRaw,
  snapshotBuckets,
  snapshotChanges,
  snapshotDir,
  startRecordingProxy,
  type BucketSnapshot,
  waitForStillBuckets,
  type RawAnswer,
  type RecordingProxy,
} from '../helpers/stack-client';

jest.setTimeout(60_000);

const dataDir = mkdtempSync(join(tmpdir(), 'dfs-hostile-'));
let stack: LocalStack | undefined;
let s3: S3Client | undefined;
let invoker: ReturnType<typeof lambdaInvoker> | undefined;
let proxy: RecordingProxy | undefined;
let ctx: CorpusContext;

const bearer = (token: string) => `Bearer ${token}`;

/** A request with the stack's token, answered 2xx, or the test stops here. */
async function call(method: string, path: string, body?: unknown, token = stack!.token): Promise<RawAnswer> {
  const res = await sendRaw(stack!.apiUrl, {
    method,
    path,
    headers: [['Authorization', bearer(token)], ['Content-Type', 'application/json']],
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${res.text}`);
  return res;
}

/** The buckets as the last case left them, when it changed nothing (so they need no second listing). */
let still: BucketSnapshot | undefined;

/** Runs `act`, then lists what it changed in the buckets (settling first when it changed anything). */
async function bucketChangesOf<T>(act: () => Promise<T>): Promise<{ result: T; changes: string[] }> {
  const before = still ?? (await snapshotBuckets(s3!));
  still = undefined;
  const result = await act();
  const after = await snapshotBuckets(s3!);
  const changes = snapshotChanges(before, after);
  if (changes.length > 0) await waitForStillBuckets(s3!);
  else still = after;
  return { result, changes };
}

/**
 * Text no answer may hold: the stack's token; and in a refusal, the emulator's own words or a stack
 * trace (a presigned URL names the local S3's key id, S3RVER, by right).
 */
function expectClean(text: string, refusal: boolean): void {
  expect(text).not.toContain(ctx.token);
  if (refusal) expect(text).not.toMatch(/s3rver|<\?xml|The specified (upload|key|bucket)|\bat .+\.(js|ts):\d+:\d+/i);
}

/** `--json` after the command's words, so that no option of the case can take it as its value. */
function withJson(args: string[]): string[] {
  const at = args[0] === 'token' ? 2 : 1;
  return [...args.slice(0, at), '--json', ...args.slice(at)];
}

const expected = (e: Expected) => ({ status: e.status, error: e.error });

beforeAll(async () => {
  stack = await startLocalStack({ dataDir, reset: true, quiet: true });
  s3 = createS3Client({ endpoint: stack.s3Endpoint });
  invoker = lambdaInvoker(stack.lambdaEndpoint, stack.functionName);
  proxy = await startRecordingProxy(stack.apiUrl);

  await call('GET', '/files'); // the stack makes its cursor secret on the first listing
  await call('PUT', '/files/hostile/victim.txt', 'a file a hostile DELETE aims at');
  await call('PUT', '/files/hostile/inner.txt', 'a file in a folder');
  const reader = await call('POST', '/tokens', { name: 'reader', scope: 'read' });
  const gone = await call('POST', '/tokens', { name: 'gone' });
  await call('GET', '/files?limit=1', undefined, gone.json.token); // it worked…
  await call('DELETE', '/tokens/gone'); // …until revoked
  const upload = await call('POST', '/uploads', { key: 'hostile/real-upload.bin', size: 10 });
  const page = await call('GET', '/files?limit=1');
  ctx = {
    token: stack.token,
    readToken: reader.json.token,
    revokedToken: gone.json.token,
    upload: { key: upload.json.key, uploads: upload.json.uploads },
    cursor: page.json.next,
  };
  expect(ctx.upload.uploads).toHaveLength(2);
  expect(ctx.cursor).toEqual(expect.any(String));
  await waitForStillBuckets(s3!);
}, 180_000);

afterAll(async () => {
  await proxy?.close();
  invoker?.destroy();
  s3?.destroy();
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** `it`, or `it.failing` for a case the product fails today (its `known` says why). */
const caseTest = (c: { known?: string }) => (c.known ? it.failing : it);

async function runApiCase(c: ApiCase): Promise<void> {
  const auth = c.auth === undefined ? bearer(ctx.token) : resolveLazy(c.auth, ctx);
  const headers: [string, string][] = [...(auth !== null ? [['Authorization', auth] as [string, string]] : []), ...resolveLazy(c.headers ?? [], ctx)];
  const body = c.body === undefined ? undefined : resolveLazy(c.body, ctx);
  const { result: res, changes } = await bucketChangesOf(async () => {
    const answer = await sendRaw(stack!.apiUrl, { method: c.method, path: resolveLazy(c.path, ctx), headers, ...(body !== undefined ? { body } : {}) });
    if (c.check && answer.status === c.expect.status) await c.check(answer.json);
    return answer;
  });
  expect({ status: res.status, error: res.json?.error, changes: changes.filter((l) => !c.writes?.test(l.slice(2))) }).toEqual({ ...expected(c.expect), changes: [] });
  if (c.expect.body) expect(res.json).toMatchObject(c.expect.body);
  if (res.status === 401) expect(res.headers['www-authenticate']).toBe('Bearer');
  expectClean(res.text, res.status >= 400);
}

async function runInvokeCase(c: InvokeCase): Promise<void> {
  const { result: out, changes } = await bucketChangesOf(() => invoker!.invoke(resolveLazy(c.event, ctx)));
  expect(out.invokeStatus).toBe(200);
  expect(out.functionError).toBeUndefined();
  expect({ status: out.result?.statusCode, error: out.result?.body?.error, changes }).toEqual({ ...expected(c.expect), changes: [] });
  if (c.expect.body) expect(out.result.body).toMatchObject(c.expect.body);
  expectClean(JSON.stringify(out.result), out.result?.statusCode >= 400);
}

async function runCliCase(c: CliCase): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'dfs-hostile-cli-'));
  try {
    const [dir, outside, home, data] = ['work', 'outside', 'home', 'data'].map((d) => join(base, d)) as [string, string, string, string];
    for (const d of [dir, outside, home, data]) mkdirSync(d);
    c.setup?.(dir, outside);
    const [dirBefore, outsideBefore] = [snapshotDir(dir), snapshotDir(outside)];
    proxy!.clear();
    const env = {
      HOME: home,
      DFS_DATA_DIR: data, // no local.json: the token is DFS_TOKEN's
      DFS_ENDPOINT: proxy!.url,
      DFS_TOKEN: ctx.token,
      DFS_LAMBDA_ENDPOINT: stack!.lambdaEndpoint,
      DFS_FUNCTION: stack!.functionName,
      ...(c.env ? resolveLazy(c.env, ctx) : {}),
    };
    const { result: run, changes } = await bucketChangesOf(() => runCli(withJson(resolveLazy(c.args, ctx)), { cwd: dir, env, timeoutMs: c.timeoutMs ?? 30_000 }));
    let out: { error?: string } | undefined;
    try {
      out = JSON.parse(run.stdout) as { error?: string };
    } catch {
      out = undefined;
    }
    expect({
      exit: run.code,
      error: c.expect.error === undefined ? undefined : out?.error,
      changes,
      sent: c.sends ? [] : proxy!.requests,
      local: snapshotChanges(dirBefore, snapshotDir(dir)),
      outside: snapshotChanges(outsideBefore, snapshotDir(outside)),
    }).toEqual({ exit: c.expect.exit, error: c.expect.error, changes: [], sent: [], local: c.localChanges ?? [], outside: [] });
    expectClean(run.stdout + run.stderr, run.code !== 0);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

const countBy = (cases: { category: string }[]) => cases.reduce<Record<string, number>>((acc, c) => ({ ...acc, [c.category]: (acc[c.category] ?? 0) + 1 }), {});

describe(`${CASE_COUNT} hostile inputs against the local stack: each a clean 4xx (or its exit code), nothing written`, () => {
  describe(`${API_CASES.length} through the API`, () => {
    for (const c of API_CASES) caseTest(c)(`${c.category}: ${c.name} → ${c.expect.status}${c.expect.error ? ` ${c.expect.error}` : ''}`, () => runApiCase(c));
  });

  describe(`${INVOKE_CASES.length} by direct invoke`, () => {
    for (const c of INVOKE_CASES) caseTest(c)(`${c.category}: ${c.name} → ${c.expect.status}${c.expect.error ? ` ${c.expect.error}` : ''}`, () => runInvokeCase(c));
  });

  describe(`${CLI_CASES.length} through dfs`, () => {
    for (const c of CLI_CASES) caseTest(c)(`${c.category}: ${c.name} → exit ${c.expect.exit}${c.expect.error ? ` ${c.expect.error}` : ''}`, () => runCliCase(c));
  });

  it('still answers afterwards: GET /files 200, the seed intact', async () => {
    const files = await call('GET', '/files');
    expect(files.status).toBe(200);
    const names = (files.json.files as { name: string }[]).map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(['fileA.txt', 'fileB.txt', 'fileC.txt', 'hostile/inner.txt']));
    expect((await call('GET', '/files/fileA.txt')).json).toMatchObject({ status: 'SINGLE', key: 'fileA.txt' });
    expect((await invoker!.invoke({ method: 'GET', path: '/files' })).result.statusCode).toBe(200);
  });

  it('holds at least 120 cases, in every category the issue names', () => {
    const counts = { ...countBy(API_CASES), ...countBy(INVOKE_CASES), ...countBy(CLI_CASES) };
    expect(Object.keys(counts).sort()).toEqual(
      ['apigw-event', 'auth', 'cli-files', 'cli-flags', 'cli-keys', 'cli-output', 'cli-tokens', 'direct', 'headers', 'json', 'keys', 'locks', 'query', 'reconcile', 'tokens', 'uploads'].sort(),
    );
    expect(CASE_COUNT).toBeGreaterThanOrEqual(120);
  });
});
