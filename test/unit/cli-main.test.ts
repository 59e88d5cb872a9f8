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

  it.each(['ls', 'put', 'rm', 'sync', 'watch'])('documents %s with its --json shape, examples and every exit code', async (command) => {
    const r = await dfs(command, '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('--json prints');
    expect(r.out).toContain(`$ dfs ${command}`);
    for (const code of [0, 1, 2, 3, 4, 5, 6, 7, 130]) expect(r.out).toMatch(new RegExp(`^  ${code}  `, 'm'));
  });

  it('lists every command and an example of each in dfs --help', async () => {
    const r = await dfs('--help');
    for (const command of ['get', 'ls', 'put', 'rm', 'sync', 'watch']) {
      expect(r.out).toMatch(new RegExp(`^  ${command} `, 'm'));
      expect(r.out).toContain(`$ dfs ${command}`);
    }
    expect(r.out).toMatch(/^ {2}6 {2}partial: some stores failed/m);
    expect(r.out).toMatch(/^ {2}7 {2}refused by a safety guard/m);
  });

  it.each([
    [['get'], /missing required argument 'name'/],
    [['put'], /missing required argument 'file'/],
    [['put', 'a', 'b'], /too many arguments for 'put'/],
    [['rm'], /missing required argument 'name'/],
    [['ls', 'a', 'b'], /too many arguments for 'ls'/],
    [['sync', '--dry'], /unknown option '--dry'/],
    [['watch', '--count', '1.5'], /--count must be a whole number/],
    [['watch', '--timeout', 'soon'], /a number of seconds above 0 is needed/],
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

  it('refuses rm without -y when there is no terminal to ask on, before reading the config', async () => {
    const r = await dfs('rm', 'fileA.txt');
    expect(r.code).toBe(2);
    expect(r.err).toBe('dfs: not deleting fileA.txt: stdin is not a terminal to confirm on; add -y to delete without asking\n');
  });

  it('refuses put of a missing file before reading the config', async () => {
    const r = await dfs('put', '/nonexistent/dir/file.txt', '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toEqual({ error: 'NoSuchFile', message: 'no such file: /nonexistent/dir/file.txt' });
  });

  it('reports a bad config as a usage error', async () => {
    const r = await dfs('get', 'fileA.txt');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^dfs: cannot read config file \/nonexistent\/dfs\.json/);
  });
});
