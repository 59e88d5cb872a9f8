import { inspect } from 'node:util';
import { configPath, DEFAULTS, loadConfig, localStackPath, Token, type ConfigSources } from '../../cli/config';

/** A file system holding only `files`; anything else is ENOENT like fs. */
const files = (entries: Record<string, string>) => (path: string) => {
  const text = entries[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
  return text;
};

const HOME = '/home/u';
const FILE = '/home/u/.config/dfs/config.json';
/** Every file is its owner's alone, unless a test says otherwise. */
const PRIVATE = () => 0o100600;
const SECRET = 'dfs_ann_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

describe('configPath', () => {
  it('prefers DFS_CONFIG, then XDG_CONFIG_HOME, then ~/.config', () => {
    expect(configPath({ DFS_CONFIG: '/x.json', XDG_CONFIG_HOME: '/xdg' }, HOME)).toBe('/x.json');
    expect(configPath({ XDG_CONFIG_HOME: '/xdg' }, HOME)).toBe('/xdg/dfs/config.json');
    expect(configPath({}, HOME)).toBe(FILE);
  });
});

describe('loadConfig', () => {
  const file = files({ [FILE]: JSON.stringify({ endpoint: 'https://file.example/prod/', lambdaEndpoint: 'http://file:3002', functionName: 'fromFile' }) });

  it('takes the flag first', () => {
    const c = loadConfig({ flags: { endpoint: 'http://flag:1' }, env: { DFS_ENDPOINT: 'http://env:2' }, readText: file, home: HOME });
    expect(c).toMatchObject({ endpoint: 'http://flag:1', endpointFrom: '--endpoint' });
  });

  it('then DFS_ENDPOINT', () => {
    const c = loadConfig({ flags: {}, env: { DFS_ENDPOINT: 'http://env:2' }, readText: file, home: HOME });
    expect(c).toMatchObject({ endpoint: 'http://env:2', endpointFrom: 'DFS_ENDPOINT' });
  });

  it('refuses an unknown key, naming the known ones and the likely one meant', () => {
    const typo = files({ [FILE]: JSON.stringify({ endpont: 'https://x' }) });
    expect(() => loadConfig({ flags: {}, env: {}, readText: typo, home: HOME })).toThrow(
      expect.objectContaining({
        exitCode: 2,
        code: 'BadConfig',
        message: `config file ${FILE}: unknown key "endpont" (did you mean "endpoint"?); the keys are endpoint, lambdaEndpoint, functionName, token, connectTimeout, idleTimeout`,
      }),
    );
  });

  it('reads timeouts in seconds from the environment before the file, and refuses nonsense', () => {
    const withTimeouts = files({ [FILE]: JSON.stringify({ connectTimeout: 3, idleTimeout: 90 }) });
    expect(loadConfig({ flags: {}, env: {}, readText: withTimeouts, home: HOME })).toMatchObject({ timeouts: { connectMs: 3000, idleMs: 90_000 } });
    expect(loadConfig({ flags: {}, env: { DFS_IDLE_TIMEOUT: '5' }, readText: withTimeouts, home: HOME })).toMatchObject({
      timeouts: { connectMs: 3000, idleMs: 5000 },
      timeoutsFrom: `"connectTimeout" in ${FILE} and DFS_IDLE_TIMEOUT`,
    });
    expect(loadConfig({ flags: {}, env: {}, readText: files({}), home: HOME }).timeouts).toBeUndefined();
    expect(() => loadConfig({ flags: {}, env: { DFS_CONNECT_TIMEOUT: 'soon' }, readText: files({}), home: HOME })).toThrow(/DFS_CONNECT_TIMEOUT must be a number of seconds/);
    expect(() => loadConfig({ flags: {}, env: {}, readText: files({ [FILE]: '{"idleTimeout": "60"}' }), home: HOME })).toThrow(/"idleTimeout" must be a number/);
  });

  it('then the config file (trailing "/" dropped, stage path kept)', () => {
    const c = loadConfig({ flags: {}, env: { DFS_ENDPOINT: '' }, readText: file, home: HOME });
    expect(c).toEqual({ endpoint: 'https://file.example/prod', endpointFrom: FILE, lambdaEndpoint: 'http://file:3002', functionName: 'fromFile', configPath: FILE });
  });

  it('then the local defaults, when no config file exists', () => {
    const c = loadConfig({ flags: {}, env: {}, readText: files({}), home: HOME });
    expect(c).toEqual({ ...DEFAULTS, endpointFrom: 'the default', configPath: FILE });
  });

  it('lets DFS_LAMBDA_ENDPOINT and DFS_FUNCTION beat the file', () => {
    const c = loadConfig({ flags: {}, env: { DFS_LAMBDA_ENDPOINT: 'http://127.0.0.1:9', DFS_FUNCTION: 'fn' }, readText: file, home: HOME });
    expect(c).toMatchObject({ lambdaEndpoint: 'http://127.0.0.1:9', functionName: 'fn' });
  });

  it.each([
    ['a file named by DFS_CONFIG that does not exist', { DFS_CONFIG: '/nope.json' }, files({}), /cannot read config file \/nope\.json/],
    ['a config file that is not JSON', {}, files({ [FILE]: '{endpoint:' }), /is not valid JSON/],
    ['a config file that is not an object', {}, files({ [FILE]: '["x"]' }), /must hold a JSON object/],
    ['a non-string setting', {}, files({ [FILE]: '{"endpoint": 3000}' }), /"endpoint" must be a string/],
    ['an endpoint that is not a URL', { DFS_ENDPOINT: 'localhost:3000' }, files({}), /DFS_ENDPOINT gives "localhost:3000"; only http/],
    ['a query in the endpoint', { DFS_ENDPOINT: 'http://h/?a=1' }, files({}), /drop the/],
  ])('refuses %s as a usage error', (_what, env, readText, message) => {
    expect(() => loadConfig({ flags: {}, env, readText, home: HOME })).toThrow(expect.objectContaining({ exitCode: 2, code: 'BadConfig', message: expect.stringMatching(message) }));
  });
});

describe('localStackPath', () => {
  it('is $DFS_DATA_DIR/local.json, else $DFS_ROOT/.dfs-data/local.json, else none', () => {
    expect(localStackPath({ DFS_DATA_DIR: '/data', DFS_ROOT: '/repo' })).toBe('/data/local.json');
    expect(localStackPath({ DFS_ROOT: '/repo' })).toBe('/repo/.dfs-data/local.json');
    expect(localStackPath({})).toBeUndefined();
  });
});

describe('loadConfig with the local stack', () => {
  const LOCAL = '/repo/.dfs-data/local.json';
  const env = { DFS_ROOT: '/repo' };
  const stack = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ endpoint: 'http://127.0.0.1:4100', lambdaEndpoint: 'http://127.0.0.1:4102', functionName: 's3-dfs-local-api', token: SECRET, ...extra });
  const load = (sources: Partial<ConfigSources>) => loadConfig({ flags: {}, env, readText: files({ [LOCAL]: stack() }), fileMode: PRIVATE, home: HOME, ...sources });

  it('takes its endpoints when nothing else names one (a stack on other ports just works)', () => {
    const c = load({});
    expect(c).toMatchObject({ endpoint: 'http://127.0.0.1:4100', endpointFrom: `the local stack (${LOCAL})`, lambdaEndpoint: 'http://127.0.0.1:4102', functionName: 's3-dfs-local-api' });
    expect(c.token).toMatchObject({ from: LOCAL, fromLocalStack: true });
    expect(c.token?.authorization()).toBe(`Bearer ${SECRET}`);
  });

  it('finds local.json under DFS_DATA_DIR first', () => {
    const c = load({ env: { DFS_ROOT: '/repo', DFS_DATA_DIR: '/data' }, readText: files({ '/data/local.json': stack({ endpoint: 'http://127.0.0.1:5000' }), [LOCAL]: stack() }) });
    expect(c).toMatchObject({ endpoint: 'http://127.0.0.1:5000', token: { from: '/data/local.json' } });
  });

  it('comes after the flag, DFS_ENDPOINT and the config file', () => {
    expect(load({ flags: { endpoint: 'http://flag:1' } })).toMatchObject({ endpoint: 'http://flag:1', lambdaEndpoint: 'http://127.0.0.1:4102' });
    expect(load({ env: { ...env, DFS_ENDPOINT: 'http://env:2', DFS_LAMBDA_ENDPOINT: 'http://env:3', DFS_FUNCTION: 'f' } })).toMatchObject({
      endpoint: 'http://env:2',
      lambdaEndpoint: 'http://env:3',
      functionName: 'f',
    });
    const c = load({ readText: files({ [LOCAL]: stack(), [FILE]: JSON.stringify({ endpoint: 'https://api.example', functionName: 'prod-api' }) }) });
    expect(c).toMatchObject({ endpoint: 'https://api.example', endpointFrom: FILE, functionName: 'prod-api', lambdaEndpoint: 'http://127.0.0.1:4102' });
    expect(c.token).toBeUndefined(); // not the local stack's API
  });

  it('leaves the defaults when local.json is missing, unreadable or not an object', () => {
    for (const readText of [files({}), files({ [LOCAL]: '{"endp' }), files({ [LOCAL]: '[1]' })]) {
      const c = load({ readText });
      expect(c).toEqual({ ...DEFAULTS, endpointFrom: 'the default', configPath: FILE });
    }
  });

  it.each([
    ['the same port under another local name', 'http://localhost:4100', true],
    ['the same port at [::1]', 'http://[::1]:4100', true],
    ['another port on this machine', 'http://127.0.0.1:4101', false],
    ['the same port elsewhere', 'http://api.example:4100', false],
    ['https elsewhere', 'https://abc.execute-api.eu-west-1.amazonaws.com', false],
  ])('hands its token only to its own API: %s (%s) → %s', (_what, endpoint, used) => {
    const c = load({ env: { ...env, DFS_ENDPOINT: endpoint } });
    expect(c.endpoint).toBe(endpoint);
    expect(c.token?.from).toBe(used ? LOCAL : undefined);
  });

  it('hands no token when local.json names no endpoint (the stack is still starting)', () => {
    const c = load({ readText: files({ [LOCAL]: JSON.stringify({ token: SECRET }) }), env: { ...env, DFS_ENDPOINT: 'http://localhost:3000' } });
    expect(c.token).toBeUndefined();
  });
});

describe('loadConfig token', () => {
  const LOCAL = '/data/local.json';
  const all = files({
    [FILE]: JSON.stringify({ token: 'dfs_file_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' }),
    [LOCAL]: JSON.stringify({ endpoint: 'http://localhost:3000', token: SECRET }),
  });
  const load = (env: Record<string, string>, readText = all, fileMode: ConfigSources['fileMode'] = PRIVATE) =>
    loadConfig({ flags: {}, env: { DFS_DATA_DIR: '/data', ...env }, readText, fileMode, home: HOME });

  it('takes DFS_TOKEN first (surrounding whitespace dropped), then the config file, then the local stack', () => {
    expect(load({ DFS_TOKEN: ' dfs_env_CCCC\n' }).token?.authorization()).toBe('Bearer dfs_env_CCCC');
    expect(load({ DFS_TOKEN: 'dfs_env_CCCC' }).token).toMatchObject({ from: 'DFS_TOKEN', fromLocalStack: false });
    const fromFile = load({});
    expect(fromFile.token?.from).toBe(FILE);
    expect(fromFile.token?.authorization()).toBe('Bearer dfs_file_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB');
    expect(load({}, files({ [LOCAL]: JSON.stringify({ endpoint: 'http://localhost:3000', token: SECRET }) })).token?.from).toBe(LOCAL);
    expect(load({ DFS_TOKEN: '' }, files({})).token).toBeUndefined();
  });

  it('uses DFS_TOKEN and the config file whatever the endpoint', () => {
    expect(load({ DFS_TOKEN: 'dfs_env_CCCC', DFS_ENDPOINT: 'https://api.example' }).token?.from).toBe('DFS_TOKEN');
    expect(load({ DFS_ENDPOINT: 'https://api.example' }).token?.from).toBe(FILE);
  });

  it.each(['644', '640', '604', '660', '602', '611'])('refuses a config file holding a token with mode %s, naming the file and chmod 600', (bits) => {
    expect(() => load({}, all, () => 0o100000 | parseInt(bits, 8))).toThrow(
      expect.objectContaining({
        exitCode: 2,
        code: 'ConfigNotPrivate',
        message: `config file ${FILE} holds a token but others may read or change it (mode ${bits}); make it yours alone: chmod 600 ${FILE}`,
      }),
    );
  });

  it('refuses it even when DFS_TOKEN is set: the token in the file is exposed all the same', () => {
    expect(() => load({ DFS_TOKEN: 'dfs_env_CCCC' }, all, () => 0o100644)).toThrow(expect.objectContaining({ code: 'ConfigNotPrivate' }));
  });

  it('takes a config file readable by its owner only, one without a token whatever its mode, and any where modes mean nothing', () => {
    expect(load({}, all, () => 0o100600).token?.from).toBe(FILE);
    expect(load({}, all, () => 0o100400).token?.from).toBe(FILE);
    expect(load({}, all, () => undefined).token?.from).toBe(FILE);
    const mode = jest.fn(() => 0o100644);
    expect(load({}, files({ [FILE]: JSON.stringify({ endpoint: 'https://api.example' }) }), mode).endpoint).toBe('https://api.example');
    expect(mode).not.toHaveBeenCalled();
  });

  it('says so when the mode cannot be read', () => {
    const fail = () => {
      throw new Error('EACCES: permission denied');
    };
    expect(() => load({}, all, fail)).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringContaining(`cannot check who may read config file ${FILE}`) }));
  });

  it.each([
    ['DFS_TOKEN', { DFS_TOKEN: `${SECRET}\nX-Evil: 1` }, files({})],
    ['DFS_TOKEN', { DFS_TOKEN: 'dfs_ann_ab cd' }, files({})],
    [`"token" in ${FILE}`, {}, files({ [FILE]: JSON.stringify({ token: `${SECRET}é` }) })],
  ])('refuses a token a header cannot carry from %s, without quoting it', (from, env, readText) => {
    let message = '';
    try {
      load(env, readText);
    } catch (err) {
      message = (err as Error).message;
      expect(err).toMatchObject({ exitCode: 2, code: 'BadConfig' });
    }
    expect(message).toBe(`${from} is not a token: it holds spaces, line breaks or other characters a token never has`);
  });

  it('never shows the token: not in String, JSON or util.inspect of the config', () => {
    const c = load({ DFS_TOKEN: SECRET });
    expect(String(c.token)).toBe('[token from DFS_TOKEN]');
    expect(JSON.stringify(c)).not.toContain(SECRET);
    expect(JSON.parse(JSON.stringify(c)).token).toEqual({ from: 'DFS_TOKEN' });
    expect(inspect(c, { depth: 5, showHidden: true })).not.toContain(SECRET);
    expect(`${new Token(SECRET, 'x')}`).not.toContain(SECRET);
  });

  it("tells the token's name, which is not secret (the journal records it), and nothing more", () => {
    const t = new Token(SECRET, 'DFS_TOKEN');
    expect(t.name).toBe(SECRET.split('_')[1]);
    expect(JSON.stringify(t)).toBe('{"from":"DFS_TOKEN"}');
    expect(new Token('Bearer x', 'DFS_TOKEN').name).toBeUndefined();
  });

  it('does not quote a config file that is not JSON (it may hold a token)', () => {
    const text = `{"token": "${SECRET}" "endpoint": "x"}`;
    expect(() => load({}, files({ [FILE]: text }))).toThrow(expect.objectContaining({ message: expect.not.stringContaining('dfs_ann_') }));
    expect(() => load({}, files({ [FILE]: text }))).toThrow(/^config file \/home\/u\/\.config\/dfs\/config\.json is not valid JSON/);
  });
});

describe('loadConfig endpoints with a user name or password', () => {
  it.each([
    ['DFS_ENDPOINT', { DFS_ENDPOINT: 'https://ann:s3cret@api.example/prod' }],
    ['DFS_ENDPOINT', { DFS_ENDPOINT: 'https://s3cret@api.example' }],
    ['DFS_LAMBDA_ENDPOINT', { DFS_LAMBDA_ENDPOINT: 'http://ann:s3cret@localhost:3002' }],
  ])('refuses them from %s as a usage error that does not show them', (from, env) => {
    let err: { message?: string; exitCode?: number } = {};
    try {
      loadConfig({ flags: {}, env, readText: files({}), home: HOME });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(new RegExp(`^${from} gives a URL with a user name or password \\(".*\\*\\*\\*@.*"\\); remove the "…@" part`));
    expect(err.message).not.toContain('s3cret');
  });

  it('does not show them either when the text is not an http URL at all', () => {
    for (const endpoint of ['ann:s3cret@api.example', 'ftp://ann:s3cret@h']) {
      expect(() => loadConfig({ flags: { endpoint }, env: {}, readText: files({}), home: HOME })).toThrow(
        expect.objectContaining({ exitCode: 2, message: expect.not.stringContaining('s3cret') }),
      );
    }
  });
});
