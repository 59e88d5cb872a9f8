/**
 * A file named on the command line by its place in the listing (the INDEX `dfs ls` prints) or
 * by its name. The rule, in one place:
 *
 *   3            a whole number: the index 3 of `dfs ls` (without a prefix), 0-based
 *   -1  1.5  1e3  +2  0x1f   number-like but not an index: refused (exit 2)
 *   fileB.txt    anything else: the name
 *   ./3          the file named "3": no key may start with "./" (lib/keys.ts), so the prefix is
 *                never part of a name, and it makes any name a name
 *
 * Indexes are resolved against the listing when the command runs (GET /files, paged as
 * `dfs ls` pages it), so the file at an index is the one a `dfs ls` at that moment shows.
 */
import { keyProblem } from '../lib/keys';
import type { FileEntry } from '../lib/types';
import type { Transport } from './client';
import { CliError, EXIT, usageError } from './exit';
import { PAGE_SIZE, listingOf } from './ls';

export type FileRef = { index: number } | { name: string };

/** A resolved FileRef: the name, and the index it was given by, if any. */
export interface NamedFile {
  name: string;
  index?: number;
}

/** Signs, a decimal point, an exponent, hex/octal/binary prefixes, blanks around digits. */
const NUMBER_LIKE = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$|^\s*[+-]?0[xob][0-9a-f]+\s*$/i;

/**
 * Reads an INDEX|NAME argument (the rule above). Throws a usage CliError (exit 2) for a
 * number-like argument that is not a whole number from 0, and for an invalid name; nothing
 * is asked of the server.
 */
export function parseFileRef(arg: string): FileRef {
  if (arg.startsWith('./')) return { name: checkedName(arg.slice(2)) };
  if (/^\d+$/.test(arg)) {
    const index = Number(arg);
    if (!Number.isSafeInteger(index)) throw usageError(`index ${arg} is too large`, 'BadIndex');
    return { index };
  }
  if (NUMBER_LIKE.test(arg)) {
    const why = /^\s*-/.test(arg) ? 'is negative' : 'is not a whole number';
    throw usageError(
      `index ${JSON.stringify(arg)} ${why}: an index is the # that dfs ls prints, 0 to n-1; for a file with this name write ./${arg}`,
      'BadIndex',
    );
  }
  return { name: checkedName(arg) };
}

function checkedName(name: string): string {
  const problem = keyProblem(name);
  if (problem !== undefined) throw usageError(`invalid name ${JSON.stringify(name)}: ${problem}`, 'InvalidKey');
  return name;
}

export interface ResolveIo {
  /** Stores that did not answer while counting: indexes then count only the others. */
  unavailable?(stores: string[]): void;
  pageSize?: number;
}

/**
 * The name a FileRef stands for: a name as given (whether any store holds it is the server's
 * to say), an index looked up in the listing, page by page until it is reached. Throws a usage
 * CliError (exit 2) for an index past the end; the mapped error of a failed listing.
 */
export async function resolveFileRef(api: Transport, ref: FileRef, io: ResolveIo = {}): Promise<NamedFile> {
  if ('name' in ref) return { name: ref.name };
  const entry = await fileAt(api, ref.index, io);
  return { name: entry.name, index: ref.index };
}

/** The listing's entry at `index` (0-based, in the server's order); see resolveFileRef. */
export async function fileAt(api: Transport, index: number, io: ResolveIo = {}): Promise<FileEntry> {
  let after: string | undefined;
  let count = 0;
  const away = new Set<string>();
  for (;;) {
    const listing = listingOf(await api.send({ op: 'list', ...(after !== undefined ? { after } : {}), limit: io.pageSize ?? PAGE_SIZE }));
    const fresh = listing.unavailable.filter((s) => !away.has(s));
    fresh.forEach((s) => away.add(s));
    if (fresh.length > 0) io.unavailable?.(fresh);
    const hit = listing.files[index - count];
    if (hit) return hit;
    count += listing.files.length;
    if (listing.next === null) break;
    if (listing.next === after) throw new CliError(EXIT.error, 'BadResponse', 'the listing cursor did not move; stopping rather than loop');
    after = listing.next;
  }
  if (count === 0) throw usageError(`index ${index} is out of range: there are no files`, 'BadIndex');
  throw usageError(`index ${index} is out of range: dfs ls lists ${count} file${count === 1 ? '' : 's'}, 0 to ${count - 1}`, 'BadIndex');
}
