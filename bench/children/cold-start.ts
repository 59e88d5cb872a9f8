/**
 * One cold start, as Lambda's runtime does it: this fresh `node` process requires a handler's
 * bundle (built as serverless.yml builds it, bench/benchmarks/cold-start.ts) and invokes its
 * handler once with EVENT, against the bench's S3 (its settings in the environment, as
 * serverless.yml sets them). Reports, from the process's own start (performance.now() counts
 * from it): when the bundle was loaded and when the first answer came.
 *
 * usage: cold-start.js BUNDLE EVENT_JSON   →  IPC { result: ColdStart }
 */
import { answer } from './ipc';

export interface ColdStart {
  /** ms from process start to this script running (Node's own start-up). */
  bootMs: number;
  /** ms to require() the bundle. */
  loadMs: number;
  /** ms from the handler's call to its answer (first S3 requests included). */
  firstAnswerMs: number;
  /** ms from process start to the answer. */
  totalMs: number;
  /**
   * CPU time of the process from its start to the answer, user + system, ms: what the cold start
   * costs the machine, which a loaded machine stretches into more wall time but not more CPU.
   */
  cpuMs: number;
  answer: unknown;
}

answer(async (): Promise<ColdStart> => {
  const bootMs = performance.now();
  const [bundle, event] = process.argv.slice(2);
  if (!bundle || !event) throw new Error('usage: cold-start.js BUNDLE EVENT_JSON');
  // A runtime path, not one esbuild should follow: the bundle is what is measured.
  const load = require;
  const mod = load(bundle) as { handler: (event: unknown, context: unknown) => Promise<unknown> };
  const loaded = performance.now();
  const result = await mod.handler(JSON.parse(event), { functionName: 'cold-start', awsRequestId: 'cold-start' });
  const done = performance.now();
  const cpu = process.cpuUsage();
  return { bootMs, loadMs: loaded - bootMs, firstAnswerMs: done - loaded, totalMs: done, cpuMs: (cpu.user + cpu.system) / 1000, answer: result };
});
