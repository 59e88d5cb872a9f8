import { decodeEventKey, parseS3Event } from '../../lib/s3events';
import { makeStores } from '../helpers/mock-s3';

/* Pure: decoding and parsing S3 notifications needs no S3 at all. */

const stores = makeStores(2); // server1 on bucket-1, server2 on bucket-2
const TIME = '2026-01-02T03:04:05.678Z';

/** One record shaped like AWS's (event structure version 2.1), with the fields that matter overridable. */
function record(over: { eventName?: unknown; eventTime?: unknown; bucket?: unknown; key?: unknown; sequencer?: unknown; eTag?: unknown; principalId?: unknown } = {}) {
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-east-1',
    eventTime: 'eventTime' in over ? over.eventTime : TIME,
    eventName: 'eventName' in over ? over.eventName : 'ObjectCreated:Put',
    userIdentity: { principalId: 'principalId' in over ? over.principalId : 'AWS:AIDAEXAMPLE' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'replicate',
      bucket: { name: 'bucket' in over ? over.bucket : 'bucket-1', arn: 'arn:aws:s3:::bucket-1' },
      object: {
        key: 'key' in over ? over.key : 'docs/a.txt',
        size: 12,
        eTag: 'eTag' in over ? over.eTag : '0123',
        sequencer: 'sequencer' in over ? over.sequencer : '0065A1B2C3D4E5F6A7',
      },
    },
  };
}

describe('decodeEventKey', () => {
  it('decodes AWS keys: "+" is a space, %2B a real plus, %20 a space', () => {
    expect(decodeEventKey('a+b%2Bc%20d', 'aws')).toBe('a b+c d');
  });

  it('decodes percent-encoded UTF-8 on AWS', () => {
    expect(decodeEventKey('caf%C3%A9/%E2%82%AC+%F0%9F%93%84.txt', 'aws')).toBe('café/€ 📄.txt');
    expect(decodeEventKey('100%25+sure%3F%23.txt', 'aws')).toBe('100% sure?#.txt');
  });

  it('leaves s3rver keys as they came, "+" and "%" included', () => {
    expect(decodeEventKey('a+b%2Bc%20d', 's3rver')).toBe('a+b%2Bc%20d');
    expect(decodeEventKey('café €.txt', 's3rver')).toBe('café €.txt');
  });

  it('throws on a malformed escape on AWS', () => {
    expect(() => decodeEventKey('bad%E0%A4%A.txt', 'aws')).toThrow(URIError);
  });
});

describe('parseS3Event', () => {
  it('turns a put on a store bucket into a created event with its store, time, sequencer, ETag and name', () => {
    const { events, rejected } = parseS3Event({ Records: [record()] }, stores, 'aws');
    expect(rejected).toEqual([]);
    expect(events).toEqual([{ store: stores[0], key: 'docs/a.txt', kind: 'created', time: Date.parse(TIME), seq: '0065A1B2C3D4E5F6A7', etag: '0123', name: 'ObjectCreated:Put', principal: 'AWS:AIDAEXAMPLE' }]);
  });

  it('names no requester when the record has no principal, or not a string', () => {
    for (const principalId of [undefined, '', 7, { id: 'x' }]) {
      expect(parseS3Event({ Records: [record({ principalId })] }, stores, 'aws').events[0]).not.toHaveProperty('principal');
    }
  });

  it('leaves the ETag out when the record has none (delete events) or an empty one', () => {
    for (const eTag of [undefined, '', 42]) {
      expect(parseS3Event({ Records: [record({ eTag })] }, stores, 'aws').events[0]).not.toHaveProperty('etag');
    }
  });

  it("stands the event's time, in hex, in for a missing or malformed sequencer", () => {
    const hexTime = Date.parse(TIME).toString(16);
    for (const sequencer of [undefined, '', 'not-hex', 'G1', 42, 'A'.repeat(65)]) {
      expect(parseS3Event({ Records: [record({ sequencer })] }, stores, 'aws').events[0]!.seq).toBe(hexTime);
    }
    expect(parseS3Event({ Records: [record({ sequencer: 'a'.repeat(64) })] }, stores, 'aws').events[0]!.seq).toBe('a'.repeat(64));
  });

  it('maps every ObjectCreated:* to created and every ObjectRemoved:* to removed', () => {
    const names = ['ObjectCreated:Put', 'ObjectCreated:Copy', 'ObjectCreated:CompleteMultipartUpload', 'ObjectCreated:Post',
      'ObjectRemoved:Delete', 'ObjectRemoved:DeleteMarkerCreated'];
    const { events, rejected } = parseS3Event({ Records: names.map((eventName) => record({ eventName, bucket: 'bucket-2' })) }, stores, 'aws');
    expect(rejected).toEqual([]);
    expect(events.map((e) => [e.store.name, e.kind, e.name])).toEqual([
      ['server2', 'created', 'ObjectCreated:Put'], ['server2', 'created', 'ObjectCreated:Copy'],
      ['server2', 'created', 'ObjectCreated:CompleteMultipartUpload'], ['server2', 'created', 'ObjectCreated:Post'],
      ['server2', 'removed', 'ObjectRemoved:Delete'], ['server2', 'removed', 'ObjectRemoved:DeleteMarkerCreated'],
    ]);
  });

  it('decodes the key by the configured flavor', () => {
    const ev = { Records: [record({ key: 'dir/a+b%2Bc.txt' })] };
    expect(parseS3Event(ev, stores, 'aws').events[0]!.key).toBe('dir/a b+c.txt');
    expect(parseS3Event(ev, stores, 's3rver').events[0]!.key).toBe('dir/a+b%2Bc.txt');
  });

  it('keeps the good records of a batch and rejects the others, each with its reason', () => {
    const bad = [
      record({ eventName: 'ObjectRestore:Completed' }),
      record({ eventName: 'ObjectTagging:Put' }),
      record({ eventName: 'LifecycleTransition' }),
      record({ bucket: 'somebody-elses-bucket' }),
      record({ key: 'bad%E0%A4%A.txt' }),
      record({ key: 'a//b.txt' }),
      record({ key: 'dir/' }),
      record({ key: 'line%0Abreak.txt' }),
      record({ eventTime: 'yesterday' }),
      record({ eventTime: undefined }),
      record({ key: 42 }),
      record({ eventName: null }),
      { eventName: 'ObjectCreated:Put', eventTime: TIME },
      null,
      'not a record',
    ];
    const good = record({ key: 'fine.txt', eventName: 'ObjectRemoved:Delete' });
    const { events, rejected } = parseS3Event({ Records: [bad[0], good, ...bad.slice(1)] }, stores, 'aws');
    expect(events).toEqual([{ store: stores[0], key: 'fine.txt', kind: 'removed', time: Date.parse(TIME), seq: '0065A1B2C3D4E5F6A7', etag: '0123', name: 'ObjectRemoved:Delete', principal: 'AWS:AIDAEXAMPLE' }]);
    const malformed = 'malformed record: eventName, eventTime, s3.bucket.name and s3.object.key are required';
    expect(rejected.map((r) => r.reason)).toEqual([
      'event ObjectRestore:Completed is neither ObjectCreated nor ObjectRemoved',
      'event ObjectTagging:Put is neither ObjectCreated nor ObjectRemoved',
      'event LifecycleTransition is neither ObjectCreated nor ObjectRemoved',
      'bucket somebody-elses-bucket is not a configured store',
      'key is not valid URL encoding',
      'key refused: key contains an empty path segment ("//")',
      'key refused: key ends with "/" (that names a folder, not a file)',
      'key refused: key contains a control character',
      malformed, malformed, malformed, malformed, malformed, malformed, malformed,
    ]);
    // Each rejection carries the record itself, for the log.
    expect(rejected[3]!.record).toBe(bad[3]);
    expect(rejected[14]!.record).toBe('not a record');
  });

  it('rejects a notification without a Records array (S3 sends s3:TestEvent so)', () => {
    const testEvent = { Service: 'Amazon S3', Event: 's3:TestEvent', Time: TIME, Bucket: 'bucket-1' };
    for (const ev of [testEvent, {}, null, undefined, 'x', { Records: 'nope' }]) {
      expect(parseS3Event(ev, stores, 'aws')).toEqual({ events: [], rejected: [{ reason: 'no Records array', record: ev }] });
    }
  });

  it('answers an empty batch with nothing either way', () => {
    expect(parseS3Event({ Records: [] }, stores, 'aws')).toEqual({ events: [], rejected: [] });
  });
});
