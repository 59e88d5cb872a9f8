/** Any error as the CliError the user sees. */
import { CliError, EXIT } from '../exit';

export function asCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  // A local file system refusal (EACCES, ENOSPC, EROFS…) says itself what went wrong.
  if (typeof (err as NodeJS.ErrnoException)?.syscall === 'string') return new CliError(EXIT.error, 'FileSystem', (err as Error).message, {}, { cause: err });
  return new CliError(EXIT.error, 'Internal', `unexpected error: ${(err as Error)?.message ?? String(err)}`, {}, { cause: err });
}
