/** bin/dfs.js: bundles cli/ on first use, reuses the bundle while fresh, ships no server code. */
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDfs } from '../helpers/cli';
import { makeTempDir, removeDir } from '../helpers/temp';

let cache: string;
beforeAll(() => {
  cache = makeTempDir('dfs-cache-');
});
afterAll(() => removeDir(cache));

/** The CLI with a bundle cache of its own; a failing build shows its errors in the test output. */
async function dfs(...args: string[]): Promise<{ code: number | null; stdout: string }> {
  const { code, stdout } = await runDfs(args, { env: { DFS_CLI_CACHE: cache }, stderr: 'inherit' });
  return { code, stdout };
}

const bundle = () => join(cache, 'dfs.js');

describe('bin/dfs.js', () => {
  it('builds the bundle on first use and reuses it while no input changed', async () => {
    expect(await dfs('--version')).toEqual({ code: 0, stdout: `${require('../../package.json').version}\n` });
    const built = statSync(bundle()).mtimeMs;
    expect((await dfs('--version')).code).toBe(0);
    expect(statSync(bundle()).mtimeMs).toBe(built);
  });

  it('rebuilds when an input is newer than the bundle', async () => {
    await dfs('--version');
    const marker = join(cache, 'marker');
    writeFileSync(marker, '');
    const future = new Date(Date.now() + 60_000);
    utimesSync(marker, future, future);
    const inputs = JSON.parse(readFileSync(join(cache, 'inputs.json'), 'utf8')) as string[];
    writeFileSync(join(cache, 'inputs.json'), JSON.stringify([...inputs, marker]));
    const before = statSync(bundle()).mtimeMs;
    expect((await dfs('--version')).code).toBe(0);
    expect(statSync(bundle()).mtimeMs).not.toBe(before);
    expect(JSON.parse(readFileSync(join(cache, 'inputs.json'), 'utf8'))).not.toContain(marker);
  });

  it('bundles no server code: from lib/ only keys.ts (and what it imports) is read, and only types are shared', async () => {
    await dfs('--version');
    const inputs = JSON.parse(readFileSync(join(cache, 'inputs.json'), 'utf8')) as string[];
    expect(inputs.filter((f) => f.startsWith('lib/')).sort()).toEqual(['lib/errors.ts', 'lib/keys.ts']);
    expect(inputs.filter((f) => f.startsWith('handlers/'))).toEqual([]);
    const code = readFileSync(bundle(), 'utf8');
    expect(code).not.toMatch(/InvalidKeyError|DfsError|@aws-sdk\/client-s3|powertools/);
    expect(code).toMatch(/import\("@aws-sdk\/client-lambda"\)/); // loaded on demand, not bundled
  });
});
