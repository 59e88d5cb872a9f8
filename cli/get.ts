/**
 * `dfs get NAME`: validate, ask the API, decide which files to write, write them.
 * No printing here; the caller formats the result (cli/output.ts).
 */
import type { ReadAnswer } from '../lib/types';
import { keyProblem } from '../lib/keys';
import type { ApiResult, Transport } from './client';
import { CliError, EXIT, errorForResponse, exitForAnswer, usageError, type ExitCode } from './exit';
import { checkTargets, planFiles, toTargets, writeTargets, type Target, type WriteOptions } from './save';

export interface GetOptions {
  name: string;
  /** Folder to save into; default ".". */
  dir: string;
  force: boolean;
  /** "newest" or a store name: save only that version, as NAME. */
  resolve?: string;
}

export interface GetResult {
  answer: ReadAnswer;
  saved: Target[];
  exitCode: ExitCode;
}

/**
 * Reads NAME and saves it (cli/save.ts names the files and keeps writes safe). `connect` is
 * called only once NAME is known to be valid, so a bad name fails before any configuration is
 * read or request made. Throws CliError: usage (2) for an invalid NAME; the mapped error for a
 * failed request; 1 for a refusal to overwrite or a failed download. NOT_FOUND is a result
 * (exit 3), not an error.
 */
export async function getFile(connect: () => Transport, opts: GetOptions, io: Omit<WriteOptions, 'force'>): Promise<GetResult> {
  const problem = keyProblem(opts.name);
  if (problem !== undefined) throw usageError(`invalid name ${JSON.stringify(opts.name)}: ${problem}`, 'InvalidKey');
  const answer = readAnswerOf(await connect().send({ op: 'get', key: opts.name }));
  if (answer.status === 'NOT_FOUND') return { answer, saved: [], exitCode: exitForAnswer(answer.status) };
  const targets = toTargets(opts.dir, planFiles(answer, opts.name, opts.resolve));
  await checkTargets(opts.dir, targets, opts.force);
  await writeTargets(opts.dir, targets, { ...io, force: opts.force });
  return { answer, saved: targets, exitCode: exitForAnswer(answer.status, opts.resolve !== undefined) };
}

/** The ReadAnswer in a 200 or 404 reply; any other reply becomes its CliError. */
export function readAnswerOf({ status, body }: ApiResult): ReadAnswer {
  const b = body as Partial<Record<string, unknown>> | null;
  const known = typeof b === 'object' && b !== null;
  if (status === 404 && known && b.status === 'NOT_FOUND') return withUnavailable(b) as ReadAnswer;
  if (status !== 200) throw errorForResponse(status, body);
  if (known && b.status === 'SINGLE' && Array.isArray(b.copies)) return withUnavailable(b) as ReadAnswer;
  if (known && b.status === 'DIFFERENT' && Array.isArray(b.versions)) return withUnavailable(b) as ReadAnswer;
  throw new CliError(EXIT.error, 'BadResponse', 'the server answered 200 with something that is not a read answer');
}

// Older or partial servers may leave `unavailable` out; everything downstream relies on it.
const withUnavailable = (b: Partial<Record<string, unknown>>) => ({ ...b, unavailable: Array.isArray(b.unavailable) ? b.unavailable : [] });
