/**
 * `dfs rm NAME`: deletes NAME from every store, after asking unless told `-y`.
 * No printing here; the caller formats the result (cli/output.ts).
 */
import type { WriteAnswer } from '../lib/types';
import { keyProblem } from '../lib/keys';
import type { Transport } from './client';
import { CliError, EXIT, exitForResults, usageError, writeAnswerOf, type ExitCode } from './exit';

export interface RmOptions {
  name: string;
  /** `-y`: do not ask. */
  yes: boolean;
}

export interface RmIo {
  /** Asks a yes/no question on the terminal; absent when stdin is not a terminal. */
  confirm?: (question: string) => Promise<boolean>;
}

export interface RmResult {
  answer: WriteAnswer;
  exitCode: ExitCode;
}

/**
 * Deletes NAME. Nothing is sent unless the name is valid and the deletion confirmed (`-y`, or
 * "y" at the prompt). Throws CliError: usage (2) for an invalid name or when there is no
 * terminal to ask on and no `-y`; 1 when the answer is no; 3 when no store holds NAME; the
 * mapped error of a refused request. Stores failing is a result: exit 6 when some deleted it,
 * 5 when none did.
 */
export async function removeFile(connect: () => Transport, opts: RmOptions, io: RmIo): Promise<RmResult> {
  const problem = keyProblem(opts.name);
  if (problem !== undefined) throw usageError(`invalid name ${JSON.stringify(opts.name)}: ${problem}`, 'InvalidKey');
  if (!opts.yes) {
    if (!io.confirm) {
      throw usageError(`not deleting ${opts.name}: stdin is not a terminal to confirm on; add -y to delete without asking`, 'ConfirmationNeeded');
    }
    if (!(await io.confirm(`delete ${opts.name} from every store? [y/N] `))) {
      throw new CliError(EXIT.error, 'Cancelled', `${opts.name} not deleted`);
    }
  }
  const reply = await connect().send({ op: 'delete', key: opts.name });
  if (reply.status === 404) {
    const b = reply.body as { error?: unknown } | null;
    // Only the API's own NotFound: a 404 from something else (a wrong endpoint) is not "no such file".
    if (b?.error === 'NotFound') throw new CliError(EXIT.notFound, 'NotFound', `${opts.name}: not found on any store`);
  }
  const answer = writeAnswerOf(reply, 'nothing was deleted');
  return { answer, exitCode: exitForResults(answer.results) };
}
