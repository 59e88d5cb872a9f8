/**
 * The local stack (scripts/stack.ts: s3rver + serverless-offline) for the benchmarks that go
 * through the API: started on free ports in a temporary data folder, optionally preloaded
 * first — with the bench's own s3rver on the same folder, before sls starts, so that loading
 * thousands of objects fires no S3 event at any function — and stopped at the end.
 *
 * scripts/stack.ts is loaded at run time: it is being written alongside the bench, and a
 * benchmark that needs it says so and is skipped when it is absent.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createS3Client } from '../lib/config';
import { ROOT } from './child';
import { startBenchS3, type BenchS3 } from './s3';

const STACK_MODULE = join(ROOT, 'scripts', 'stack.ts');
const STORES = ['server1', 'server2'];

/** What the bench uses of scripts/stack.ts's LocalStack. */
interface LocalStackLike {
  apiUrl: string;
  s3Endpoint: string;
  stores: { name: string; bucket: string }[];
  controlBucket: string;
  token: string;
  stop(): Promise<void>;
}
type StartLocalStack = (opts: { dataDir: string; quiet: boolean; stores: string[] }) => Promise<LocalStackLike>;

export interface BenchStack {
  apiUrl: string;
  s3Endpoint: string;
  /** The stores' buckets, server1 first. */
  buckets: string[];
  controlBucket: string;
  /** A write token of the stack, for requests to apiUrl. */
  token: string;
  client: S3Client;
  stop(): Promise<void>;
}

/** Why the local stack cannot be used, or undefined when it can. */
export function missingStack(needFunction?: string): string | undefined {
  if (!existsSync(STACK_MODULE)) return 'scripts/stack.ts (startLocalStack) does not exist yet';
  if (needFunction && !hasFunction(needFunction)) return `serverless.yml has no \`${needFunction}\` function yet`;
  return undefined;
}

/** True when serverless.yml's `functions:` block declares `name`. */
export function hasFunction(name: string): boolean {
  const yml = readFileSync(join(ROOT, 'serverless.yml'), 'utf8');
  const start = yml.search(/^functions:/m);
  if (start < 0) return false;
  const block = yml.slice(start);
  const end = block.search(/\n\S/); // the next top-level key
  return new RegExp(`^  ${name}:`, 'm').test(end < 0 ? block : block.slice(0, end));
}

/** The buckets scripts/stack.ts derives for STORES (infra/stores layoutOf, prefix `<service>-local`). */
function layout(): { stores: string[]; control: string } {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { layoutOf } = require('../infra/stores') as { layoutOf: (names: string[], prefix: string) => { stores: { bucket: string }[]; control: { bucket: string } } };
  const service = /^service:\s*(\S+)/m.exec(readFileSync(join(ROOT, 'serverless.yml'), 'utf8'))?.[1] ?? 's3-dfs';
  const l = layoutOf(STORES, `${service}-local`);
  return { stores: l.stores.map((s) => s.bucket), control: l.control.bucket };
}

/**
 * Starts the stack in a fresh data folder. `preload` fills the stores first through an s3rver
 * of the bench's own on that folder.
 */
export async function startBenchStack(preload?: (s3: BenchS3, buckets: string[]) => Promise<void>): Promise<BenchStack> {
  const why = missingStack();
  if (why) throw new Error(why);
  const dataDir = mkdtempSync(join(tmpdir(), 's3-dfs-bench-stack-'));
  try {
    const { stores, control } = layout();
    if (preload) {
      const s3 = await startBenchS3(join(dataDir, 's3'));
      try {
        await s3.createBuckets([...stores, control]);
        await preload(s3, stores);
      } finally {
        await s3.stop();
      }
    }
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { startLocalStack } = require(STACK_MODULE) as { startLocalStack: StartLocalStack };
    const stack = await startLocalStack({ dataDir, quiet: true, stores: STORES });
    const buckets = STORES.map((n) => stack.stores.find((s) => s.name === n)?.bucket ?? '');
    const client = createS3Client({ endpoint: stack.s3Endpoint });
    const stop = async () => {
      client.destroy();
      await stack.stop();
      rmSync(dataDir, { recursive: true, force: true });
    };
    if (buckets.join() !== stores.join()) {
      await stop();
      throw new Error(`the stack's buckets (${buckets.join(', ')}) are not the ones preloaded (${stores.join(', ')})`);
    }
    return { apiUrl: stack.apiUrl, s3Endpoint: stack.s3Endpoint, buckets, controlBucket: stack.controlBucket, token: stack.token, client, stop };
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}
