/**
 * `dfs cat NAME` and `dfs get NAME -o -`: one version's bytes to stdout, streamed (never held
 * whole). Identical copies (SINGLE) are written; differing ones (DIFFERENT) only with --resolve,
 * otherwise nothing reaches stdout and the exit code is 4, so `dfs cat x | tool` never feeds
 * `tool` a version picked silently. No printing here; the caller formats the result.
 */
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { ReadAnswer } from '../lib/types';
import { keyProblem } from '../lib/keys';
import type { Transport } from './client';
import { CliError, EXIT, exitForAnswer, usageError, type ExitCode } from './exit';
import { readAnswerOf } from './get';
import { planFiles, type PlannedFile } from './save';

export interface CatOptions {
  name: string;
  /** "newest" or a store: which version to write when the copies differ. */
  resolve?: string;
}

export interface CatIo {
  out: Writable;
  download: (url: string) => Promise<Readable>;
  signal: AbortSignal;
  /** Hears the bytes written so far. */
  onBytes?: (bytes: number) => void;
}

export interface CatResult {
  answer: ReadAnswer;
  /** The version written; absent when nothing was (NOT_FOUND, DIFFERENT without --resolve). */
  written?: PlannedFile;
  bytes: number;
  exitCode: ExitCode;
}

/**
 * Writes NAME's bytes to `io.out`. Throws CliError: usage (2) for an invalid name or a --resolve
 * store that holds no copy; 130 when interrupted, saying how many bytes stdout got; 1 when the
 * download fails or ends short. NOT_FOUND (3) and DIFFERENT without --resolve (4) are results.
 */
export async function catFile(connect: () => Transport, opts: CatOptions, io: CatIo): Promise<CatResult> {
  const problem = keyProblem(opts.name);
  if (problem !== undefined) throw usageError(`invalid name ${JSON.stringify(opts.name)}: ${problem}`, 'InvalidKey');
  const answer = readAnswerOf(await connect().send({ op: 'get', key: opts.name }, { signal: io.signal }));
  if (answer.status === 'NOT_FOUND') return { answer, bytes: 0, exitCode: EXIT.notFound };
  if (answer.status === 'DIFFERENT' && opts.resolve === undefined) return { answer, bytes: 0, exitCode: EXIT.different };
  const [file] = planFiles(answer, opts.name, opts.resolve);
  if (!file) throw new CliError(EXIT.error, 'BadResponse', `the answer for ${opts.name} carries no version`);
  const bytes = await writeContent(file, io);
  if (bytes !== file.size) {
    throw new CliError(EXIT.error, 'DownloadFailed', `${opts.name}: received ${bytes} bytes, expected ${file.size}; stdout got a partial copy`);
  }
  return { answer, written: file, bytes, exitCode: exitForAnswer(answer.status, opts.resolve !== undefined) };
}

async function writeContent(file: PlannedFile, io: CatIo): Promise<number> {
  if ('base64' in file.content) {
    const buf = Buffer.from(file.content.base64, 'base64');
    await write(io.out, buf, io.signal, 0);
    io.onBytes?.(buf.length);
    return buf.length;
  }
  const body = await io.download(file.content.url);
  let bytes = 0;
  const stop = () => body.destroy();
  io.signal.addEventListener('abort', stop, { once: true });
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      await write(io.out, chunk, io.signal, bytes);
      bytes += chunk.length;
      io.onBytes?.(bytes);
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    if (io.signal.aborted) throw interruptedAfter(bytes);
    throw new CliError(EXIT.error, 'DownloadFailed', `download failed after ${bytes} bytes (${(err as Error).message}); stdout got a partial copy`, {}, { cause: err });
  } finally {
    io.signal.removeEventListener('abort', stop);
  }
  if (io.signal.aborted) throw interruptedAfter(bytes);
  return bytes;
}

/** Writes one chunk, waiting for the reader when the pipe is full (a slow `| tool`). */
async function write(out: Writable, chunk: Buffer, signal: AbortSignal, before: number): Promise<void> {
  if (signal.aborted) throw interruptedAfter(before);
  if (out.write(chunk)) return;
  await once(out, 'drain', { signal }).catch(() => {
    throw interruptedAfter(before);
  });
}

const interruptedAfter = (bytes: number) =>
  new CliError(EXIT.interrupted, 'Interrupted', `interrupted after ${bytes} bytes: stdout got a partial copy`, { bytes });
