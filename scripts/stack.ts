import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { layoutOf } from '../infra/stores';
import { createS3Client } from '../lib/config';
import { loadSeed } from '../seed/load';
import { authenticate, createToken, revokeToken } from '../lib/tokens';
import type { ControlBucket } from '../lib/control';
import { makeS3rverLikeS3 } from './s3rver-like-s3';

// Neither ships types: s3rver, and serverless's own reader of serverless.yml.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const S3rver = require('s3rver');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const readServerlessYml: (path: string) => Promise<ServerlessYml> = require('serverless/lib/configuration/read');

interface ServerlessYml {
  service: string;
  custom?: { stores?: unknown };
  functions?: Record<string, unknown>;
}

const ROOT = resolve(__dirname, '..');
const SLS = join(ROOT, 'node_modules', '.bin', 'sls');
const STAGE = 'local';
const FUNCTION = 'api';
const HOST = '127.0.0.1';
export const LEGACY_FLAG = '--openssl-legacy-provider';

/**
 * s3rver encrypts listing continuation tokens with DES, which Node 17+ only offers with the
 * legacy OpenSSL provider; without it any truncated listing fails with HTTP 500. The seeding
 * s3rver runs in this process, the stack's in the sls child (which always gets the flag).
 */
export function hasLegacyCrypto(): boolean {
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return true;
  } catch {
    return false;
  }
}

export interface LocalStackOptions {
  /** API Gateway port. 0 or omitted: a free port. */
  httpPort?: number;
  /** s3rver port. 0 or omitted: a free port. */
  s3Port?: number;
  /** Lambda invoke endpoint port. 0 or omitted: a free port. */
  lambdaPort?: number;
  /** serverless-offline's websocket port (unused until a websocket route exists). 0 or omitted: a free port. */
  websocketPort?: number;
  /** Where s3rver keeps the buckets (under `<dataDir>/s3`). Default: `.dfs-data/` of the project. */
  dataDir?: string;
  /** Wipe `dataDir` first, so the stores start from the seed again. Default: false. */
  reset?: boolean;
  /** Keep sls's output to yourself (it is still shown when start-up fails). Default: false. */
  quiet?: boolean;
  /** Store names instead of serverless.yml's `custom.stores` (passed as `--param=stores=…`). */
  stores?: string[];
  /** Give up when the API has not answered within this many ms. Default: 60 000. */
  startTimeoutMs?: number;
}

export interface LocalStack {
  /** API Gateway (HTTP API) base URL, e.g. `http://127.0.0.1:3000`. */
  apiUrl: string;
  /** s3rver, path-style, credentials S3RVER/S3RVER. */
  s3Endpoint: string;
  /** Lambda Invoke API of serverless-offline; call it with `functionName`. */
  lambdaEndpoint: string;
  dataDir: string;
  stores: { name: string; bucket: string }[];
  controlBucket: string;
  /** Full function name the Lambda endpoint wants, e.g. `s3-dfs-local-api`. */
  functionName: string;
  /** True when this start put the seed into empty stores. */
  seeded: boolean;
  /** A write token of this stack (also in `<dataDir>/local.json`, where the CLI finds it). */
  token: string;
  /** Stops every process of the stack. Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Starts the local stack: s3rver (through serverless-s3-local) plus serverless-offline's
 * API Gateway and Lambda, running `sls offline start --stage local` in its own process group.
 *
 *   seed   s3rver on <dataDir>/s3, a free port ── stores empty? put the seed ── close
 *   start  sls offline start ── s3-local reopens <dataDir>/s3 ── offline listens
 *   ready  the API answers an HTTP request
 *
 * Seeding happens before sls starts so that no S3 event of the seed reaches a function:
 * the seed stands for stores that diverged before replication ran (DESIGN.md "Sample data").
 * Throws, with sls's output, when the stack exits or does not answer in time.
 */
export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  if (!hasLegacyCrypto()) {
    throw new Error(`the local stack needs Node started with ${LEGACY_FLAG} (s3rver's listings use DES); set NODE_OPTIONS=${LEGACY_FLAG}`);
  }
  const yml = await readServerlessYml(join(ROOT, 'serverless.yml'));
  if (!yml.functions?.[FUNCTION]) throw new Error(`serverless.yml has no function "${FUNCTION}"`);
  const bucketPrefix = `${yml.service}-${STAGE}`;
  const { stores, control } = layoutOf(opts.stores ?? yml.custom?.stores, bucketPrefix);

  const dataDir = resolve(opts.dataDir ?? join(ROOT, '.dfs-data'));
  if (opts.reset) {
    if (ROOT.startsWith(dataDir)) throw new Error(`refusing to reset ${dataDir}: it holds the project`);
    rmSync(dataDir, { recursive: true, force: true });
  }
  const s3Dir = join(dataDir, 's3');
  mkdirSync(s3Dir, { recursive: true });
  const { seeded, token } = await prepareData(s3Dir, stores, control.bucket, dataDir);

  const setup = { dataDir, bucketPrefix, stores, control: control.bucket, service: yml.service, seeded, token };
  return onFreshPorts([opts.httpPort, opts.s3Port, opts.lambdaPort, opts.websocketPort], (ports) => startOffline(opts, ports, setup));
}

/** sls could not bind `port` (EADDRINUSE). */
export class PortTakenError extends Error {
  constructor(
    message: string,
    readonly port: number | undefined,
  ) {
    super(message);
  }
}

/**
 * Runs `start` on `wanted` with 0 or undefined replaced by free ports. A free port is free only
 * until sls binds it: another process, or an outgoing connection (they draw from the same
 * range), can take it meanwhile. Then it starts again on fresh ones, up to `attempts` times; a
 * port the caller gave is not ours to change, so its being taken ends it at once.
 */
export async function onFreshPorts<T>(wanted: (number | undefined)[], start: (ports: number[]) => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(wanted);
    try {
      return await start(ports);
    } catch (err) {
      const ours = err instanceof PortTakenError && (err.port === undefined ? wanted.some((p) => !p) : !wanted.includes(err.port));
      if (!ours || attempt === attempts) throw err;
    }
  }
}

async function startOffline(
  opts: LocalStackOptions,
  [httpPort, s3Port, lambdaPort, websocketPort]: number[],
  setup: { dataDir: string; bucketPrefix: string; stores: { name: string; bucket: string }[]; control: string; service: string; seeded: boolean; token: string },
): Promise<LocalStack> {
  const { dataDir, bucketPrefix, stores, control, service, seeded, token } = setup;
  // Each stack builds in its own folder: a concurrent `sls package` or stack would delete ours.
  const buildDir = join('.esbuild', `offline-${process.pid}-${httpPort}`);
  const args = [SLS, 'offline', 'start', '--stage', STAGE, `--param=bucketPrefix=${bucketPrefix}`];
  if (opts.stores) args.push(`--param=stores=${opts.stores.join(',')}`);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    detached: true, // its own process group, so stop() reaches every process it starts
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_OPTIONS: withFlag(process.env.NODE_OPTIONS, LEGACY_FLAG),
      AWS_EC2_METADATA_DISABLED: 'true',
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      // The SDK's notice about Node 22 would follow every first request; it is not the stack's news.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      DFS_HTTP_PORT: String(httpPort),
      DFS_S3_PORT: String(s3Port),
      DFS_LAMBDA_PORT: String(lambdaPort),
      DFS_WEBSOCKET_PORT: String(websocketPort),
      DFS_DATA_DIR: dataDir,
      DFS_BUILD_DIR: buildDir,
    },
  });
  const output = captureOutput(child, opts.quiet ?? false);
  const group = processGroup(child);
  const stop = once(async () => {
    await group.stop();
    rmSync(join(ROOT, buildDir), { recursive: true, force: true });
    try {
      rmdirSync(join(ROOT, '.esbuild')); // only when no other stack builds there
    } catch {
      // not empty, or gone
    }
  });

  const apiUrl = `http://${HOST}:${httpPort}`;
  try {
    await waitUntil(() => answers(apiUrl), { exited: group.exited, timeoutMs: opts.startTimeoutMs ?? 60_000 });
  } catch (err) {
    await stop();
    const said = output();
    const message = `the local stack did not start: ${(err as Error).message}\n--- sls output ---\n${said}`;
    const taken = /EADDRINUSE[^\n]*?:(\d+)/.exec(said);
    throw said.includes('EADDRINUSE') ? new PortTakenError(message, taken ? Number(taken[1]) : undefined) : new Error(message);
  }

  const lambdaEndpoint = `http://${HOST}:${lambdaPort}`;
  const functionName = `${service}-${STAGE}-${FUNCTION}`;
  writeLocalFile(join(dataDir, LOCAL_FILE), { endpoint: apiUrl, lambdaEndpoint, functionName, token });
  return {
    apiUrl,
    s3Endpoint: `http://${HOST}:${s3Port}`,
    lambdaEndpoint,
    dataDir,
    stores: stores.map(({ name, bucket }) => ({ name, bucket })),
    controlBucket: control,
    functionName,
    seeded,
    token,
    stop,
  };
}

/**
 * Opens `<dir>` with s3rver just long enough to seed empty stores (`seeded`: it did) and to make
 * sure the local token in `<dataDir>/local.json` is one the stack knows (lib/tokens.ts): the CLI
 * reads it when it talks to this stack, so the sample commands need no setup.
 */
async function prepareData(dir: string, stores: { name: string; bucket: string }[], controlBucket: string, dataDir: string): Promise<{ seeded: boolean; token: string }> {
  const server = new S3rver({
    address: HOST,
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: [...stores.map((s) => s.bucket), controlBucket].map((name) => ({ name })),
  });
  // The same s3rver as the stack's (infra/s3rver-like-s3.js): the seed is written as S3 would.
  makeS3rverLikeS3(server);
  const { port } = (await server.run()) as { port: number };
  const s3 = createS3Client({ endpoint: `http://${HOST}:${port}` });
  try {
    const loaded = await loadSeed(stores.map((s) => ({ ...s, s3 })), { ifEmpty: true });
    const token = await localToken({ bucket: controlBucket, s3 }, join(dataDir, LOCAL_FILE));
    return { seeded: loaded.length > 0, token };
  } finally {
    s3.destroy();
    await server.close();
  }
}

/** Where the stack leaves its endpoint and token for the CLI (cli/config.ts reads it). */
export const LOCAL_FILE = 'local.json';
const LOCAL_TOKEN_NAME = 'local';

/** The token in `file` if the control bucket still knows it, else a new `local` token written there (0600). */
async function localToken(control: ControlBucket, file: string): Promise<string> {
  try {
    const { token } = JSON.parse(readFileSync(file, 'utf8')) as { token?: string };
    if (token) {
      await authenticate({ control }, `Bearer ${token}`);
      return token;
    }
  } catch {
    // missing, unreadable, or a token of data since wiped: make a new one
  }
  await revokeToken({ control }, LOCAL_TOKEN_NAME).catch(() => undefined);
  const { token } = await createToken({ control }, { name: LOCAL_TOKEN_NAME, scope: 'write' }, { name: 'npm start', scope: 'write' });
  writeLocalFile(file, { token });
  return token;
}

/** Writes `local.json` readable by its owner only: it holds a token. */
function writeLocalFile(file: string, value: object): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Keeps the last 256 KiB of the child's output for error reports; echoes it unless quiet. */
function captureOutput(child: ChildProcess, quiet: boolean): () => string {
  const LIMIT = 256 * 1024;
  let text = '';
  const keep = (chunk: Buffer, echo: NodeJS.WriteStream) => {
    text = (text + chunk.toString('utf8')).slice(-LIMIT);
    if (!quiet) echo.write(chunk);
  };
  // Always read both pipes: a full pipe would block sls.
  child.stdout?.on('data', (c: Buffer) => keep(c, process.stdout));
  child.stderr?.on('data', (c: Buffer) => keep(c, process.stderr));
  return () => text;
}

interface ProcessGroup {
  /** Rejects when the leader exits; never resolves. */
  exited: Promise<never>;
  stop(): Promise<void>;
}

/**
 * The child's process group: stop() sends SIGTERM (sls closes its servers), then SIGKILL to
 * whatever is left after 5 s. A process exit handler kills the group if stop() was never called.
 */
function processGroup(child: ChildProcess): ProcessGroup {
  const pgid = child.pid!;
  let exitedCode: string | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitedCode = signal ?? String(code);
      resolve();
    }),
  );
  const exited = exit.then(() => Promise.reject(new Error(`sls exited (${exitedCode}) before the API answered`)));
  exited.catch(() => undefined); // only awaited during start-up
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pgid, sig);
    } catch {
      // ESRCH: the group is gone already.
    }
  };
  const alive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const killOnExit = () => signal('SIGKILL');
  process.once('exit', killOnExit);
  return {
    exited,
    async stop() {
      process.off('exit', killOnExit);
      signal('SIGTERM');
      const grace = new Promise<void>((resolve) => setTimeout(resolve, 5000).unref());
      await Promise.race([exit, grace]);
      // Whatever did not go on SIGTERM (the leader, or anything it left behind) goes now.
      if (alive()) signal('SIGKILL');
      await exit;
      if (alive()) signal('SIGKILL');
      await waitUntil(async () => !alive(), { timeoutMs: 5000 });
    },
  };
}

/** Resolves when `check` is true, polling every 50 ms; rejects on `exited` or the time limit. */
async function waitUntil(
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; exited?: Promise<never> },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let done = false;
  const poll = async () => {
    while (!(await check())) {
      if (done) return;
      if (Date.now() > deadline) throw new Error(`no answer within ${opts.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await (opts.exited ? Promise.race([poll(), opts.exited]) : poll());
  } finally {
    done = true; // ends the loop when `exited` won the race
  }
}

/** True when anything answers HTTP at `url` (any status: the routes are up). */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${url}/`, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** The given ports, with 0 or undefined replaced by distinct free loopback ports. */
async function freePorts(wanted: (number | undefined)[]): Promise<number[]> {
  const held: Server[] = [];
  try {
    return await Promise.all(
      wanted.map(async (port) => {
        if (port) return port;
        const srv = createServer();
        held.push(srv);
        await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, HOST, resolve));
        return (srv.address() as { port: number }).port;
      }),
    );
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

export function withFlag(nodeOptions: string | undefined, flag: string): string {
  const current = nodeOptions?.trim() ?? '';
  return current.split(/\s+/).includes(flag) ? current : `${current} ${flag}`.trim();
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}
