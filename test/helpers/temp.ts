import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A new empty folder under the system temp folder, its name starting with `prefix`. */
export const makeTempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

export const removeDir = (dir: string): void => rmSync(dir, { recursive: true, force: true });

/**
 * For a test file: returns a maker of fresh temp folders; every folder it made is removed
 * after the test that made it.
 */
export function useTempDirs(prefix: string): () => string {
  const made: string[] = [];
  afterEach(() => {
    for (const d of made.splice(0)) removeDir(d);
  });
  return () => {
    const d = makeTempDir(prefix);
    made.push(d);
    return d;
  };
}
