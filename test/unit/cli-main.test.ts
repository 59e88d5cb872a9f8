import { run, type Io } from '../../cli/main';

/** Runs the CLI in-process with an endpoint nothing listens on: these cases must never connect. */
async function dfs(...argv: string[]) {
  const io = { out: '', err: '' };
  const sink: Io = { stdout: (t) => void (io.out += t), stderr: (t) => void (io.err += t), env: { DFS_ENDPOINT: 'http://127.0.0.1:9', DFS_CONFIG: '/nonexistent/dfs.json' }, interactive: false };
  const code = await run(argv, sink);
  return { code, ...io };
}

describe('dfs (in-process)', () => {
  it('documents in dfs --help, once, the commands, examples, where the API and the token are, and every exit code', async () => {
    const r = await dfs('--help');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').filter((l) => /^[A-Z][A-Z ]+$/.test(l))).toEqual(['USAGE', 'COMMANDS', 'FLAGS', 'EXAMPLES', 'WHERE THE API IS', 'EXIT CODES', 'LEARN MORE']);
    expect(r.out).toMatch(/EXIT CODES\n {2}0 {2}success/);
    expect(r.out).toContain('$ dfs get fileA.txt');
    expect(r.out).toMatch(/^ {2}The token \(first found wins; never an argument/m);
    for (const code of [0, 1, 2, 3, 4, 5, 6, 7, 8, 130]) expect(r.out).toMatch(new RegExp(`^  ${code}  `, 'm'));
  });

  it.each(['get', 'cat', 'stat', 'ls', 'put', 'rm', 'sync', 'watch', 'lock', 'unlock', 'locks', 'token create', 'token list', 'token revoke', 'version', 'completion'])(
    'documents %s in gh\'s layout with its examples, pointing to dfs --help for what all share',
    async (command) => {
      const r = await dfs(...command.split(' '), '--help');
      expect(r.code).toBe(0);
      const headings = r.out.split('\n').filter((l) => /^[A-Z][A-Z ]+$/.test(l));
      expect(headings.filter((h) => h !== 'ARGUMENTS')).toEqual(['USAGE', 'FLAGS', 'INHERITED FLAGS', 'EXAMPLES', 'LEARN MORE']);
      expect(r.out).toMatch(new RegExp(`^USAGE\n  dfs ${command}( [<[][a-z.]+[>\\]](\\.\\.\\.)?)? \\[flags\\]$`, 'm'));
      expect(r.out).toContain(`$ dfs ${command}`);
      expect(r.out).toMatch(/^INHERITED FLAGS\n(.*\n)* {2}--json /m);
      expect(r.out).toContain('dfs --help   where the API is, the token, and every exit code');
      // The shared blocks are printed once, in dfs --help.
      expect(r.out).not.toMatch(/first found wins|^ {2}130 {2}/m);
      if (!['version', 'completion'].includes(command)) expect(r.out).toContain('--json prints');
    },
  );

  it('keeps a subcommand\'s help short', async () => {
    expect((await dfs('get', '--help')).out.split('\n').length).toBeLessThan(64);
  });

  it('documents INDEX|NAME and the lock flags in dfs lock --help and dfs unlock --help', async () => {
    const lock = await dfs('lock', '--help');
    expect(lock.out).toMatch(/^ {2}\.\/3 {8}the file named "3"/m);
    expect(lock.out).toMatch(/--ttl <duration>/);
    expect(lock.out).toMatch(/--at <store>/);
    const unlock = await dfs('unlock', '--help');
    for (const flag of ['--force', '--discard', '-y, --yes', '--no-wait']) expect(unlock.out).toContain(flag);
    expect((await dfs('--help')).out).toMatch(/^ {2}3 {2}not found .* unlock: the file is not locked/ms);
  });

  it('lists the token commands in dfs token --help', async () => {
    const r = await dfs('token', '--help');
    expect(r.code).toBe(0);
    for (const sub of ['create', 'list', 'revoke']) expect(r.out).toMatch(new RegExp(`^  ${sub} `, 'm'));
    expect(r.out).toContain('a read-only token may get, ls, watch and sync --dry-run');
  });

  it('lists every command and an example of each in dfs --help', async () => {
    const r = await dfs('--help');
    for (const command of ['get', 'ls', 'put', 'rm', 'sync', 'watch', 'lock', 'unlock', 'locks', 'token']) {
      expect(r.out).toMatch(new RegExp(`^  ${command} `, 'm'));
      expect(r.out).toContain(`$ dfs ${command}`);
    }
    expect(r.out).toMatch(/^ {2}6 {2}partial: some stores failed/m);
    expect(r.out).toMatch(/^ {2}7 {2}refused by a safety guard/m);
    expect(r.out).toMatch(/^ {2}8 {2}not allowed/m);
  });

  it.each([
    [['get'], /missing required argument 'name'/],
    [['put'], /missing required argument 'file'/],
    [['put', 'a', 'b'], /no such file: a/],
    // '' is refused without a stat, before the stat of the first fails: the first is still named.
    [['put', 'missing', ''], /no such file: missing/],
    [['rm'], /missing required argument 'name'/],
    [['ls', 'a', 'b'], /too many arguments for 'ls'/],
    [['sync', '--dry'], /unknown option '--dry'/],
    [['watch', '--count', '1.5'], /--count must be a whole number/],
    [['watch', '--timeout', 'soon'], /a number of seconds above 0 is needed/],
    [['get', 'a', '--bogus'], /unknown option '--bogus'/],
    [['get', 'a', '--via', 'carrier-pigeon'], /Allowed choices are http, lambda/],
    [['fetch', 'a'], /unknown command 'fetch'/],
    [['token'], /USAGE\n {2}dfs token <command> \[flags\]/],
    [['token', 'create'], /missing required argument 'name'/],
    [['token', 'make', 'ann'], /unknown command 'make'/],
    [['token', 'list', 'x'], /too many arguments for 'list'/],
    [['token', 'create', 'ann', '--token', 'x'], /unknown option '--token'/],
    [['lock'], /missing required argument 'file'/],
    [['lock', '1', '2'], /too many arguments for 'lock'/],
    [['lock', '1.5'], /index "1\.5" is not a whole number/],
    [['lock', '1', '--ttl', 'soon'], /--ttl "soon" is not a duration/],
    [['lock', '1', '--ttl', '10d'], /--ttl "10d" is out of range/],
    [['unlock', '-3'], /index "-3" is negative/],
    [['unlock', '1', '--wait'], /unknown option '--wait'/],
    [['locks', 'x'], /too many arguments for 'locks'/],
    [['get', 'docs/', '-o', '-'], /-o - writes one file to stdout; docs\/ names every file under it/],
    [['get', 'docs/', '--force', '--skip-existing'], /--force and --skip-existing say opposite things/],
    [['get', 'a', '--jobs', '0'], /--jobs must be a whole number from 1 to 64/],
    [['put', 'x', '--jobs', '65'], /--jobs must be a whole number from 1 to 64/],
    [['put', '-'], /dfs put - reads stdin, which has no name: add --as NAME/],
    [['completion', 'fish'], /no completion for "fish"/],
    [['cat'], /missing required argument 'name'/],
    [['stat', 'a//b'], /invalid name "a\/\/b"/],
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

  it.each([
    [['token', 'create', 'Ann'], 'InvalidTokenName', 'invalid token name "Ann": 1 to 40 of a-z, 0-9 and "-", starting with a letter or digit'],
    [['token', 'revoke', 'a_b', '-y'], 'InvalidTokenName', 'invalid token name "a_b": 1 to 40 of a-z, 0-9 and "-", starting with a letter or digit'],
    [['token', 'revoke', 'ann'], 'ConfirmationNeeded', 'not revoking ann: stdin is not a terminal to confirm on; add -y to revoke without asking'],
  ])('refuses %j as usage before reading the config', async (argv, error, message) => {
    const r = await dfs(...argv, '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toEqual({ error, message });
  });

  it('reports a bad config as a usage error', async () => {
    const r = await dfs('get', 'fileA.txt');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^dfs: cannot read config file \/nonexistent\/dfs\.json/);
  });
});
