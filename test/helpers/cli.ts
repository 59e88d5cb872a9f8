/**
 * For integration tests of the `dfs` command: the real CLI (`node bin/dfs.js`) run as a child
 * process, and a fake API (node:http on 127.0.0.1) for it to talk to.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeDir } from './temp';

const BIN = join(__dirname, '..', '..', 'bin', 'dfs.js');

/** How a run of the CLI ended. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface DfsOptions {
  /** The child's working folder; by default this process's. */
  cwd?: string;
  /** The child's whole environment besides PATH: nothing else is inherited. */
  env?: Record<string, string>;
  /** 'inherit' shows the child's stderr in the test output instead of collecting it (then `stderr` is ''). */
  stderr?: 'pipe' | 'inherit';
}

export interface Running {
  child: ChildProcess;
  /** Settles once the child has exited and closed its output. */
  done: Promise<Ran>;
  /** Settles on the child's first output on stdout. */
  firstOutput: Promise<void>;
}

/**
 * Starts the real CLI with stdin not a terminal (as in any script or pipe). Asynchronous, so a
 * fake API in this process keeps answering while it runs.
 */
export function startDfs(args: string[], { cwd, env = {}, stderr: stderrMode = 'pipe' }: DfsOptions = {}): Running {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', stderrMode],
  });
  let stdout = '';
  let stderr = '';
  const firstOutput = new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Ran>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done, firstOutput };
}

/** Runs the real CLI to its end; see `startDfs`. */
export const runDfs = (args: string[], options?: DfsOptions): Promise<Ran> => startDfs(args, options).done;

/** One request the fake API received, with its whole body. */
export interface SeenRequest {
  method: string;
  /** Path and query as sent, percent-encoded. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type ApiHandler = (req: SeenRequest, res: ServerResponse) => void;

export interface FakeApi {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** The requests received since the start or the last `clear()`, in the order their bodies ended. */
  requests: SeenRequest[];
  clear(): void;
  close(): Promise<void>;
}

/** Serves `handler` on a free port of 127.0.0.1. Each request is read in full and recorded, then handed to `handler`. */
export async function startFakeApi(handler: ApiHandler): Promise<FakeApi> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(seen);
      handler(seen, res);
    });
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

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The fake API's 404 for a request it has no answer for. */
export const noRoute = (req: SeenRequest, res: ServerResponse): void =>
  sendJson(res, 404, { error: 'NotFound', message: `no route for ${req.method} ${req.url}` });

export interface CliSandbox {
  /** The fake API; its `requests` are those of the current test. */
  readonly api: FakeApi;
  /** A HOME of the tests' own, so a developer's ~/.config/dfs cannot leak into them. */
  readonly home: string;
  /**
   * An environment for the CLI: HOME and XDG_CONFIG_HOME in `home`, DFS_DATA_DIR an empty
   * folder there (so a local stack's local.json in the project cannot lend its token), DFS_ENDPOINT
   * the fake API, then `extra`.
   */
  env(extra?: Record<string, string>): Record<string, string>;
}

/**
 * For a test file of the CLI: starts a fake API serving `handler` and makes a HOME before all
 * tests, forgets the API's requests before each test, and closes and removes both after all.
 * Read its members in tests and hooks only.
 */
export function useCliSandbox(handler: ApiHandler): CliSandbox {
  let api: FakeApi | undefined;
  let home: string | undefined;
  beforeAll(async () => {
    api = await startFakeApi(handler);
    home = makeTempDir('dfs-home-');
  });
  beforeEach(() => api?.clear());
  afterAll(async () => {
    await api?.close();
    if (home !== undefined) removeDir(home);
  });
  const sandbox: CliSandbox = {
    get api() {
      if (!api) throw new Error('the fake API starts in beforeAll');
      return api;
    },
    get home() {
      if (home === undefined) throw new Error('the HOME is made in beforeAll');
      return home;
    },
    env: (extra = {}) => ({
      HOME: sandbox.home,
      XDG_CONFIG_HOME: join(sandbox.home, 'config'),
      DFS_DATA_DIR: join(sandbox.home, 'no-stack'),
      DFS_ENDPOINT: sandbox.api.url,
      ...extra,
    }),
  };
  return sandbox;
}
