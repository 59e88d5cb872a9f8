import { createS3Client, loadConfig, parseStores, requireEnv, s3ClientConfig } from '../../lib/config';

describe('parseStores', () => {
  it('reads the JSON form, keeping region and endpoint', () => {
    const raw = JSON.stringify([
      { name: 'server1', bucket: 'dfs-one' },
      { name: 'server2', bucket: 'dfs-two', region: 'eu-west-1', endpoint: 'http://localhost:4569' },
    ]);
    expect(parseStores(raw)).toEqual([
      { name: 'server1', bucket: 'dfs-one' },
      { name: 'server2', bucket: 'dfs-two', region: 'eu-west-1', endpoint: 'http://localhost:4569' },
    ]);
    expect(parseStores(`  ${raw}\n`)).toHaveLength(2);
  });

  it('reads the name=bucket,name=bucket form, trimming spaces', () => {
    expect(parseStores('server1=dfs-one,server2=dfs-two')).toEqual([
      { name: 'server1', bucket: 'dfs-one' },
      { name: 'server2', bucket: 'dfs-two' },
    ]);
    expect(parseStores(' server1 = dfs-one ,  server-3=dfs.three ')).toEqual([
      { name: 'server1', bucket: 'dfs-one' },
      { name: 'server-3', bucket: 'dfs.three' },
    ]);
  });

  it('accepts names of 1 to 63 lower-case letters, digits and "-"', () => {
    expect(parseStores('a=b')).toEqual([{ name: 'a', bucket: 'b' }]);
    expect(parseStores(`${'s'.repeat(63)}=b`)[0]!.name).toHaveLength(63);
    expect(parseStores('0-x=b')[0]!.name).toBe('0-x');
  });

  it('refuses a store listed twice, in either form', () => {
    expect(() => parseStores('server1=a,server1=b')).toThrow('store server1 is listed twice');
    expect(() => parseStores('[{"name":"s","bucket":"a"},{"name":"s","bucket":"b"}]')).toThrow('store s is listed twice');
  });

  it.each(['Server1', '-server', 'a_b', 'a.b', 'é', 's'.repeat(64), ''])('refuses the store name %j', (name) => {
    expect(() => parseStores(`${name}=bucket`)).toThrow(`store name "${name}" must be lower-case letters, digits and "-"`);
  });

  it('refuses a store without a bucket', () => {
    expect(() => parseStores('server1')).toThrow('store server1 has no bucket');
    expect(() => parseStores('server1=,server2=b')).toThrow('store server1 has no bucket');
    expect(() => parseStores('[{"name":"server1"}]')).toThrow('store server1 has no bucket');
  });

  it('refuses an empty list', () => {
    expect(() => parseStores('[]')).toThrow('DFS_STORES lists no store');
    expect(() => parseStores('')).toThrow(/store name ""/);
    expect(() => parseStores('server1=a,')).toThrow(/store name ""/);
  });

  it('refuses malformed JSON', () => {
    expect(() => parseStores('[{"name":"server1",')).toThrow();
  });
});

describe('loadConfig', () => {
  const env = { DFS_STORES: 'server1=b1,server2=b2', DFS_CONTROL_BUCKET: 'control' };

  it('applies the defaults', () => {
    const config = loadConfig(env);
    expect(config).toMatchObject({
      stores: [
        { name: 'server1', bucket: 'b1' },
        { name: 'server2', bucket: 'b2' },
      ],
      controlBucket: 'control',
      inlineLimit: 1024 * 1024,
      urlExpirySeconds: 900,
      compareChunkBytes: 3 * 1024 * 1024,
    });
    expect(config).not.toHaveProperty('s3Endpoint');
  });

  it("reads the system's principals, none by default, and refuses one that is no principal", () => {
    expect(loadConfig(env).systemPrincipals).toEqual([]);
    expect(loadConfig({ ...env, DFS_SYSTEM_PRINCIPALS: 'AWS:AROA1, AWS:AROA2,,' }).systemPrincipals).toEqual(['AWS:AROA1', 'AWS:AROA2']);
    for (const bad of ['AROA1', 'AWS:', 'AWS:a b', 'AWS:x:session']) {
      expect(() => loadConfig({ ...env, DFS_SYSTEM_PRINCIPALS: bad })).toThrow(/DFS_SYSTEM_PRINCIPALS/);
    }
  });

  it('reads the numbers and the endpoint override', () => {
    const config = loadConfig({
      ...env,
      DFS_INLINE_LIMIT: '4096',
      DFS_URL_EXPIRY: '60',
      DFS_COMPARE_CHUNK: '65536',
      DFS_S3_ENDPOINT: 'http://localhost:4569',
    });
    expect(config).toMatchObject({ inlineLimit: 4096, urlExpirySeconds: 60, compareChunkBytes: 65536, s3Endpoint: 'http://localhost:4569' });
  });

  it('treats empty values as unset', () => {
    const config = loadConfig({ ...env, DFS_INLINE_LIMIT: '', DFS_S3_ENDPOINT: '' });
    expect(config.inlineLimit).toBe(1024 * 1024);
    expect(config).not.toHaveProperty('s3Endpoint');
  });

  it.each(['0', '-1', '1.5', 'abc', '12kb', '9007199254740993', 'NaN'])('refuses %j as a positive integer', (raw) => {
    expect(() => loadConfig({ ...env, DFS_INLINE_LIMIT: raw })).toThrow(`DFS_INLINE_LIMIT must be a positive integer, got "${raw}"`);
    expect(() => loadConfig({ ...env, DFS_URL_EXPIRY: raw })).toThrow(`DFS_URL_EXPIRY must be a positive integer, got "${raw}"`);
    expect(() => loadConfig({ ...env, DFS_COMPARE_CHUNK: raw })).toThrow(`DFS_COMPARE_CHUNK must be a positive integer, got "${raw}"`);
  });

  it('requires DFS_STORES and DFS_CONTROL_BUCKET', () => {
    expect(() => loadConfig({ DFS_CONTROL_BUCKET: 'control' })).toThrow('environment variable DFS_STORES is required');
    expect(() => loadConfig({ DFS_STORES: 'a=b' })).toThrow('environment variable DFS_CONTROL_BUCKET is required');
    expect(() => loadConfig({ ...env, DFS_STORES: '' })).toThrow('environment variable DFS_STORES is required');
  });

  it('passes a bad store list through as an error at cold start', () => {
    expect(() => loadConfig({ ...env, DFS_STORES: 'Server1=b' })).toThrow(/store name "Server1"/);
  });
});

describe('requireEnv', () => {
  it('returns a set value and refuses a missing or empty one', () => {
    expect(requireEnv({ X: 'v' }, 'X')).toBe('v');
    expect(() => requireEnv({}, 'X')).toThrow('environment variable X is required');
    expect(() => requireEnv({ X: '' }, 'X')).toThrow('environment variable X is required');
  });
});

describe('s3ClientConfig', () => {
  const saved = process.env.AWS_REGION;
  afterEach(() => {
    if (saved === undefined) delete process.env.AWS_REGION;
    else process.env.AWS_REGION = saved;
  });

  it('without an endpoint: AWS defaults, virtual-hosted style, the default credential chain', () => {
    delete process.env.AWS_REGION;
    const config = s3ClientConfig({});
    expect(config.region).toBe('us-east-1');
    expect(config).not.toHaveProperty('endpoint');
    expect(config).not.toHaveProperty('forcePathStyle');
    expect(config).not.toHaveProperty('credentials');
    expect(config.requestHandler).toMatchObject({ connectionTimeout: 3000 });
  });

  it('takes the region from the store, else AWS_REGION', () => {
    process.env.AWS_REGION = 'eu-central-1';
    expect(s3ClientConfig({}).region).toBe('eu-central-1');
    expect(s3ClientConfig({ region: 'ap-south-1' }).region).toBe('ap-south-1');
  });

  it('with an endpoint (s3rver): path style, no flexible checksums, s3rver keys', () => {
    const config = s3ClientConfig({ endpoint: 'http://localhost:4569' });
    expect(config).toMatchObject({
      endpoint: 'http://localhost:4569',
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
  });

  it('builds a client with those settings', () => {
    expect(createS3Client({ endpoint: 'http://localhost:4569' }).config.forcePathStyle).toBe(true);
    expect(createS3Client({ region: 'us-west-2' }).config.forcePathStyle).toBeFalsy();
  });
});
