/**
 * For end-to-end tests against a running local stack (scripts/stack.ts): requests sent exactly as
 * written (raw HTTP, so no client normalises a path or refuses a header first), direct Lambda
 * invokes, and snapshots of every bucket and of local folders to show that a refused request
 * changed nothing.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ListBucketsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';

/** An HTTP answer: status, lower-case headers, the body as text and, when it is JSON, parsed. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface RawRequest {
  method: string;
  /** Sent as is: percent-encoding, `..` and `//` included. */
  path: string;
  /** Header lines as is; a value may hold anything, a line break included. */
  headers?: [string, string][] | Record<string, string>;
  body?: string | Buffer;
}

/**
 * Sends one HTTP/1.1 request byte for byte over a new connection and reads the answer to its end
 * (`Connection: close`). Unlike fetch or node:http it sends header values no client would (line
 * breaks, 10 KB tokens) and paths no client would leave alone.
 */
export function sendRaw(baseUrl: string, req: RawRequest, timeoutMs = 30_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  const body = req.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
  const headers = Array.isArray(req.headers) ? req.headers : Object.entries(req.headers ?? {});
  const head = [
    `${req.method} ${req.path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    'Connection: close',
    ...(req.body !== undefined ? [`Content-Length: ${body.length}`] : []),
    ...headers.map(([k, v]) => `${k}: ${v}`),
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms to ${req.method} ${req.path.slice(0, 80)}`)), timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseAnswer(Buffer.concat(chunks)));
      } catch (err) {
        reject(err);
      }
    });
    socket.write(Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]));
  });
}

function parseAnswer(raw: Buffer): RawAnswer {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`not an HTTP answer: ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`);
  const [statusLine = '', ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = unchunk(body);
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status, headers, text, json };
}

function unchunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
    if (!size) break;
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** What a direct invoke gave back: the function's result, or the invoke API's own refusal. */
export interface Invoked {
  /** The Invoke API's HTTP status (200 when the function ran). */
  invokeStatus: number;
  functionError?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  result: any;
}

/**
 * A client of the stack's Lambda Invoke API (dummy credentials, as on the local stack). `invoke`
 * sends `payload` JSON-encoded; an API Gateway event's `body` comes back as a string, parsed here.
 */
export function lambdaInvoker(endpoint: string, functionName: string) {
  const lambda = new LambdaClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 });
  return {
    async invoke(payload: unknown): Promise<Invoked> {
      const out = await lambda.send(new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(payload)) }));
      const text = Buffer.from(out.Payload ?? []).toString('utf8');
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const result: any = text ? JSON.parse(text) : undefined;
      if (result && typeof result.body === 'string' && /json/.test(result.headers?.['content-type'] ?? '')) result.body = JSON.parse(result.body);
      return { invokeStatus: out.StatusCode ?? 0, ...(out.FunctionError ? { functionError: out.FunctionError } : {}), result };
    },
    destroy: () => lambda.destroy(),
  };
}

/** Every object of every bucket: `bucket/key` → `etag size lastModified`. */
export type BucketSnapshot = Map<string, string>;

/** Lists every bucket the S3 endpoint has (stores, control, logs) and every object in each. */
export async function snapshotBuckets(s3: S3Client): Promise<BucketSnapshot> {
  const { Buckets = [] } = await s3.send(new ListBucketsCommand({}));
  const listings = await Promise.all(
    Buckets.map(async ({ Name }) => {
      const lines: [string, string][] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: Name, ContinuationToken: token }));
        for (const o of page.Contents ?? []) lines.push([`${Name}/${o.Key}`, `${o.ETag} ${o.Size} ${o.LastModified?.toISOString()}`]);
        token = page.NextContinuationToken;
      } while (token);
      return lines;
    }),
  );
  return new Map(listings.flat());
}

/**
 * Waits until the buckets stop changing for `stillMs` (S3 events of a write replicate and journal
 * after the write is answered), so what a test compares next starts from a still state.
 */
export async function waitForStillBuckets(s3: S3Client, { stillMs = 1500, maxMs = 20_000 } = {}): Promise<void> {
  const start = Date.now();
  let last = await snapshotBuckets(s3);
  let since = Date.now();
  while (Date.now() - since < stillMs) {
    if (Date.now() - start > maxMs) throw new Error(`the buckets kept changing for ${maxMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
    const now = await snapshotBuckets(s3);
    if (snapshotChanges(last, now).length > 0) since = Date.now();
    last = now;
  }
}

/** What differs between two snapshots, one line per object (`+` new, `-` gone, `~` changed), sorted. */
export function snapshotChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  const changes: string[] = [];
  for (const [k, v] of after) {
    if (!before.has(k)) changes.push(`+ ${k}`);
    else if (before.get(k) !== v) changes.push(`~ ${k}`);
  }
  for (const k of before.keys()) if (!after.has(k)) changes.push(`- ${k}`);
  return changes.sort();
}

/**
 * Everything under `dir`, recursively, without following symlinks: relative path → type, size,
 * mtime and content hash (files), or target (symlinks). FIFOs and sockets are listed, not read.
 */
export function snapshotDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(dir, r);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.set(r, `link -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else if (st.isFile()) out.set(r, `file ${st.size} ${st.mtimeMs} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
      else out.set(r, `special ${st.mode.toString(8)}`);
    }
  };
  walk('');
  return out;
}

/** One request a recording proxy passed on. */
export interface ProxiedRequest {
  method: string;
  url: string;
}

export interface RecordingProxy {
  /** `http://127.0.0.1:PORT`: give it to the CLI as its endpoint. */
  url: string;
  /** Every request passed on since the start or the last `clear()`. */
  requests: ProxiedRequest[];
  clear(): void;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of `target` that records every request it passes on, so a test can
 * show that a command refused its input before sending anything.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const to = new URL(target);
  const requests: ProxiedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '' });
    const out = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    clear: () => void requests.splice(0),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** How a run of the CLI ended; `code` is null when it was killed for taking too long. */
export interface CliRun {
  code: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

const DFS_BIN = join(__dirname, '..', '..', 'bin', 'dfs.js');

/**
 * Runs the real `dfs` (bin/dfs.js) with exactly `env` (plus PATH), stdin closed, in `cwd`.
 * Asynchronous, so servers in this process (a recording proxy) keep answering; killed after
 * `timeoutMs` (then `timedOut`), so a command that hangs fails its test instead of the run.
 */
export function runCli(args: string[], opts: { cwd: string; env: Record<string, string>; timeoutMs: number }): Promise<CliRun> {
  const child = spawn(process.execPath, [DFS_BIN, ...args], { cwd: opts.cwd, env: { PATH: process.env.PATH ?? '', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs);
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? null : code, timedOut, stdout, stderr });
    });
  });
}
