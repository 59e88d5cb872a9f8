import { configPath, DEFAULTS, loadConfig } from '../../cli/config';

/** A file system holding only `files`; anything else is ENOENT like fs. */
const files = (entries: Record<string, string>) => (path: string) => {
  const text = entries[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
  return text;
};

const HOME = '/home/u';
const FILE = '/home/u/.config/dfs/config.json';

describe('configPath', () => {
  it('prefers DFS_CONFIG, then XDG_CONFIG_HOME, then ~/.config', () => {
    expect(configPath({ DFS_CONFIG: '/x.json', XDG_CONFIG_HOME: '/xdg' }, HOME)).toBe('/x.json');
    expect(configPath({ XDG_CONFIG_HOME: '/xdg' }, HOME)).toBe('/xdg/dfs/config.json');
    expect(configPath({}, HOME)).toBe(FILE);
  });
});

describe('loadConfig', () => {
  const file = files({ [FILE]: JSON.stringify({ endpoint: 'https://file.example/prod/', lambdaEndpoint: 'http://file:3002', functionName: 'fromFile', token: 'later' }) });

  it('takes the flag first', () => {
    const c = loadConfig({ flags: { endpoint: 'http://flag:1' }, env: { DFS_ENDPOINT: 'http://env:2' }, readText: file, home: HOME });
    expect(c).toMatchObject({ endpoint: 'http://flag:1', endpointFrom: '--endpoint' });
  });

  it('then DFS_ENDPOINT', () => {
    const c = loadConfig({ flags: {}, env: { DFS_ENDPOINT: 'http://env:2' }, readText: file, home: HOME });
    expect(c).toMatchObject({ endpoint: 'http://env:2', endpointFrom: 'DFS_ENDPOINT' });
  });

  it('then the config file (trailing "/" dropped, stage path kept, unknown keys ignored)', () => {
    const c = loadConfig({ flags: {}, env: { DFS_ENDPOINT: '' }, readText: file, home: HOME });
    expect(c).toEqual({ endpoint: 'https://file.example/prod', endpointFrom: FILE, lambdaEndpoint: 'http://file:3002', functionName: 'fromFile' });
  });

  it('then the local defaults, when no config file exists', () => {
    const c = loadConfig({ flags: {}, env: {}, readText: files({}), home: HOME });
    expect(c).toEqual({ ...DEFAULTS, endpointFrom: 'the default' });
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
