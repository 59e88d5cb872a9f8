import { GetObjectCommand } from '@aws-sdk/client-s3';
import { readFile } from '../../lib/read';
import { parseStores } from '../../lib/config';
import { makeDeps } from '../helpers/deps';
import { makeStores, s3Error, useFakeS3 } from '../helpers/mock-s3';

const { fake } = useFakeS3();
const stores = makeStores(2);

describe('read-path regressions found in review', () => {

it('falls back to LastModified for an x-amz-meta-mtime beyond the Date range', async () => {
  fake.put('bucket-1', 'f', 'one', { metadata: { mtime: '99999999999999999' }, lastModified: new Date('2026-01-01T00:00:00Z') });
  fake.put('bucket-2', 'f', 'two');
  await expect(readFile(makeDeps(stores), 'f')).resolves.toMatchObject({ status: 'DIFFERENT' });
});

it('a store that fails while its body is read makes it unavailable, not an unknown error', async () => {
  fake.put('bucket-2', 'f', 'hello');
  fake.fail('bucket-2', () => s3Error('InternalError', 500), { command: 'GetObject' });
  const r = await readFile(makeDeps(stores), 'f').catch((e) => e);
  expect(r).toMatchObject({ unavailable: ['server2'] });
});

it('parseStores refuses a JSON store without a name', () => {
  expect(() => parseStores('[{"bucket":"b1"}]')).toThrow();
});

it('a missing bucket (NoSuchBucket, 404) is unavailable, not missing', async () => {
  fake.put('bucket-1', 'f', 'hello');
  fake.fail('bucket-2', () => s3Error('NoSuchBucket', 404, 'The specified bucket does not exist'));
  await expect(readFile(makeDeps(stores), 'f')).resolves.toMatchObject({ unavailable: ['server2'] });
});
});
