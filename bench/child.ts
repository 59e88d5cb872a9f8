/**
 * Child processes of the bench. Entry points under bench/children/ are bundled once per run
 * with esbuild (packages stay external, resolved from node_modules as usual) and run with
 * plain `node`: no TypeScript loader in the process whose memory or start-up is measured.
 * A child answers once over IPC: `{ result }` or `{ error }`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';

export const ROOT = resolve(__dirname, '..');
const OUT_DIR = join(ROOT, 'node_modules', '.cache', 's3-dfs-bench');
const LEGACY = '--openssl-legacy-provider';
const built = new Map<string, string>();

/** Bundles `bench/children/NAME.ts` (once per run) and returns the file to run. */
export function bundle(name: string): string {
  let file = built.get(name);
  if (file) return file;
  file = join(OUT_DIR, `${name}.js`);
  mkdirSync(OUT_DIR, { recursive: true });
  buildSync({
    absWorkingDir: ROOT,
    entryPoints: [join('bench', 'children', `${name}.ts`)],
    outfile: file,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    packages: 'external',
    logLevel: 'error',
  });
  built.set(name, file);
  return file;
}

/** The environment of a child: ours, with s3rver's DES listings enabled. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const opts = (process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  if (!opts.includes(LEGACY)) opts.push(LEGACY);
  return { ...process.env, NODE_OPTIONS: opts.join(' '), ...extra };
}

export interface Spawned<M> {
  child: ChildProcess;
  /** The child's first IPC message. */
  message: M;
  /** stderr so far (last 64 KiB), for error reports. */
  stderr(): string;
}

/** Starts `bench/children/NAME.ts` and resolves with its first IPC message; rejects if it exits first. */
export function startChild<M>(name: string, args: string[], env: Record<string, string> = {}): Promise<Spawned<M>> {
  const child = spawn(process.execPath, [bundle(name), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    env: childEnv(env),
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-64 * 1024);
  });
  const stderr = () => err;
  return new Promise((resolvePromise, reject) => {
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`child ${name} exited (${signal ?? code}) before answering:\n${err}`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.once('message', (message) => {
      child.off('exit', onExit);
      resolvePromise({ child, message: message as M, stderr });
    });
  });
}

/** Runs a child to its end and returns its `result`, throwing its `error`. */
export async function runChild<R>(name: string, args: string[], env: Record<string, string> = {}): Promise<R> {
  const { child, message, stderr } = await startChild<{ result?: R; error?: string }>(name, args, env);
  await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
  if (message.error !== undefined) throw new Error(`child ${name} failed: ${message.error}\n${stderr()}`);
  return message.result as R;
}
