import { run, type Io } from '../../cli/main';

/** Runs the CLI in-process with an endpoint nothing listens on: these cases must never connect. */
async function dfs(...argv: string[]) {
  const io = { out: '', err: '' };
  const sink: Io = { stdout: (t) => void (io.out += t), stderr: (t) => void (io.err += t), env: { DFS_ENDPOINT: 'http://127.0.0.1:9', DFS_CONFIG: '/nonexistent/dfs.json' }, interactive: false };
  const code = await run(argv, sink);
  return { code, ...io };
}

describe('dfs (in-process)', () => {
  it('documents exit codes and examples in --help', async () => {
    const r = await dfs('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Exit codes:\n {2}0 {2}success/);
    expect(r.out).toContain('$ dfs get fileA.txt');
    const g = await dfs('get', '--help');
    expect(g.out).toContain('{"inlineBytes": N}');
    expect(g.out).toMatch(/ {2}4 {2}the stores hold different versions/);
  });

  it.each([
    [['get'], /missing required argument 'name'/],
    [['get', 'a', '--bogus'], /unknown option '--bogus'/],
    [['get', 'a', '--via', 'carrier-pigeon'], /Allowed choices are http, lambda/],
    [['fetch', 'a'], /unknown command 'fetch'/],
  ])('exits 2 for %j', async (argv, message) => {
    const r = await dfs(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('prints usage errors as JSON with --json', async () => {
    const r = await dfs('get', '--json');
    expect(r).toMatchObject({ code: 2, err: '' });
    expect(JSON.parse(r.out)).toEqual({ error: 'Usage', message: "missing required argument 'name'" });
  });

  it('checks the name before the config: a bad name wins over a missing DFS_CONFIG file', async () => {
    const r = await dfs('get', 'a//b', '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toEqual({ error: 'InvalidKey', message: 'invalid name "a//b": key contains an empty path segment ("//")' });
  });

  it('reports a bad config as a usage error', async () => {
    const r = await dfs('get', 'fileA.txt');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^dfs: cannot read config file \/nonexistent\/dfs\.json/);
  });
});
