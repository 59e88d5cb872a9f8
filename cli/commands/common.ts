/** What the command modules share besides the context (cli/context.ts). */
import { InvalidArgumentError, Option } from 'commander';

/** Sets the exit code of the run. */
export type Exit = (code: number) => void;

export function positiveInt(what: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
      throw new InvalidArgumentError(`${what} must be a whole number ${max < Number.MAX_SAFE_INTEGER ? `from 1 to ${max}` : 'of 1 or more'}.`);
    }
    return Number(value);
  };
}

export function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a number of seconds above 0 is needed.');
  return n;
}

/** Files in flight at once for transfers of several files. */
export const DEFAULT_JOBS = 8;

export const jobsOption = () =>
  new Option('-j, --jobs <n>', `files transferred at once, for folders and several files (1 to 64)`).argParser(positiveInt('--jobs', 64)).default(DEFAULT_JOBS);
