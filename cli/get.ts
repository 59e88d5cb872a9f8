/**
 * `dfs get NAME`: validate, ask the API, decide which files to write, write them.
 * No printing here; the caller formats the result (cli/output.ts).
 */
import type { ReadAnswer } from '../lib/types';
import { keyProblem } from '../lib/keys';
import { readAnswerOf as sharedReadAnswerOf } from '../client/answers';
import type { Transport } from './client';
import { lstat } from 'node:fs/promises';
import { cliGuard, exitForAnswer, usageError, type ExitCode } from './exit';
import { sameContent } from './local';
import { checkTargets, planFiles, toTargets, writeTargets, type Target, type WriteOptions } from './save';

export interface GetOptions {
  name: string;
  /** Folder to save into; default ".". */
  dir: string;
  force: boolean;
  /** "newest" or a store name: save only that version, as NAME. */
  resolve?: string;
  /** Leave files that exist alone (saying whether they are up to date) instead of refusing. */
  skipExisting?: boolean;
}

/** A file left alone by --skip-existing: `upToDate` true (identical), false (differs), undefined (cannot tell). */
export interface Skipped {
  shown: string;
  upToDate: boolean | undefined;
}

export interface GetResult {
  answer: ReadAnswer;
  saved: Target[];
  skipped?: Skipped[];
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
  let targets = toTargets(opts.dir, planFiles(answer, opts.name, opts.resolve));
  const skipped: Skipped[] = [];
  if (opts.skipExisting && !opts.force) {
    const kept: Target[] = [];
    for (const t of targets) {
      const st = await lstat(t.path).catch(() => null);
      if (!st?.isFile()) {
        kept.push(t);
        continue;
      }
      const inline = 'base64' in t.content ? { inline: Buffer.from(t.content.base64, 'base64') } : {};
      skipped.push({ shown: t.shown, upToDate: await sameContent(t.path, { size: t.size, ...(t.etag !== undefined ? { etag: t.etag } : {}), ...inline }) });
    }
    targets = kept;
  }
  await checkTargets(opts.dir, targets, opts.force);
  await writeTargets(opts.dir, targets, { ...io, force: opts.force });
  return { answer, saved: targets, ...(opts.skipExisting ? { skipped } : {}), exitCode: exitForAnswer(answer.status, opts.resolve !== undefined) };
}

/** The ReadAnswer in a 200 or 404 reply (client/answers.ts); any other reply becomes its CliError. */
export const readAnswerOf = cliGuard(sharedReadAnswerOf);
