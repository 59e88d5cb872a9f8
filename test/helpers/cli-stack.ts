/**
 * For CLI tests against the whole server path in-process: a real s3rver (two stores and the
 * control bucket), the real API handler behind a fake API on 127.0.0.1, and the real binary run
 * with bytes in and out (stdin piped, stdout kept as a Buffer). One stack per test file, started
 * in beforeAll and stopped in afterAll even when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Deps } from '../../lib/deps';
import { connectStores, type Store } from '../../lib/stores';
import { putTestTokens, TEST_TOKEN } from './apigw';
import { startFakeApi, type FakeApi } from './cli';
import { makeDeps } from './deps';
import { serveLambda, type LambdaApi } from './lambda-api';
import { startS3rver, type LocalS3 } from './s3rver';
import { makeTempDir, removeDir } from './temp';

const BIN = join(__dirname, '..', '..', 'bin', 'dfs.js');

export interface CliStack {
  s3: LocalS3;
  stores: Store[];
  deps: Deps;
  api: FakeApi;
  home: string;
  /** The environment the CLI runs with: this stack's endpoint and token, a HOME of its own. */
  env(extra?: Record<string, string>): Record<string, string>;
}

/**
 * Starts the stack before all tests of the file. `setDeps` hands the deps to the file's
 * `jest.mock('../../handlers/deps')`, which must be in the test file itself (jest hoists it).
 */
export function useCliStack(handler: () => LambdaApi, setDeps: (deps: Deps) => void, names = ['server1', 'server2']): () => CliStack {
  let stack: CliStack | undefined;
  beforeAll(async () => {
    const s3 = await startS3rver([...names, 'control']);
    await putTestTokens((key, text) => s3.client.send(new PutObjectCommand({ Bucket: 'control', Key: key, Body: text })));
    const stores = connectStores({ stores: names.map((name) => ({ name, bucket: name })), s3Endpoint: s3.endpoint, flavor: 's3rver' });
    const deps = makeDeps(stores);
    setDeps(deps);
    const api = await startFakeApi(serveLambda(handler()));
    const home = makeTempDir('dfs-home-');
    stack = {
      s3,
      stores,
      deps,
      api,
      home,
      env: (extra = {}) => ({
        HOME: home,
        XDG_CONFIG_HOME: join(home, 'config'),
        DFS_DATA_DIR: join(home, 'no-stack'),
        DFS_ENDPOINT: api.url,
        DFS_TOKEN: TEST_TOKEN,
        ...extra,
      }),
    };
  });
  afterAll(async () => {
    await stack?.api.close();
    stack?.stores[0]?.s3.destroy();
    stack?.stores[0]?.signer?.destroy();
    await stack?.s3.stop();
    if (stack) removeDir(stack.home);
  });
  return () => {
    if (!stack) throw new Error('the stack starts in beforeAll');
    return stack;
  };
}

export interface BytesRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface BytesOptions {
  env: Record<string, string>;
  cwd?: string;
  /** Written to stdin, then stdin is closed; without it stdin is closed at once. */
  stdin?: Buffer;
}

/** Starts `node bin/dfs.js ARGS` with bytes in and out. */
export function startBytes(args: string[], { env, cwd, stdin }: BytesOptions): { child: ChildProcess; done: Promise<BytesRun> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdin!.on('error', () => undefined); // the CLI may exit before reading it all
  child.stdin!.end(stdin);
  const done = new Promise<BytesRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: err }));
  });
  return { child, done };
}

export const runBytes = (args: string[], opts: BytesOptions): Promise<BytesRun> => startBytes(args, opts).done;

/** `size` bytes that show a missed, doubled or swapped chunk anywhere (never a repeating pattern). */
export function testBytes(size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(Math.ceil(size / 4) * 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    // xorshift32: cheap, and no two 4-byte words in a row repeat for a long while.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b.subarray(0, size);
}
