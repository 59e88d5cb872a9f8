import { onFreshPorts, PortTakenError } from '../../scripts/stack';

/*
 * The local stack's ports: chosen free, then bound by sls a moment later. Another process can
 * take one in between (seen once under a loaded `npm test`); the stack then starts again.
 */

const taken = (port?: number) => new PortTakenError('the local stack did not start: … EADDRINUSE', port);

describe('onFreshPorts', () => {
  it('fills in free, distinct ports where none was given and keeps the ones given', async () => {
    const seen: number[][] = [];
    await onFreshPorts([4100, undefined, 0], async (ports) => void seen.push(ports));
    expect(seen).toHaveLength(1);
    const [given, a, b] = seen[0]!;
    expect(given).toBe(4100);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
    expect(a).not.toBe(b);
  });

  it('starts again on fresh ports when one it chose was taken before sls bound it', async () => {
    const seen: number[][] = [];
    const started = await onFreshPorts([undefined, undefined], async (ports) => {
      seen.push(ports);
      if (seen.length === 1) throw taken(ports[1]);
      return 'up';
    });
    expect(started).toBe('up');
    expect(seen).toHaveLength(2);
  });

  it('gives up after three starts, with the last error', async () => {
    let starts = 0;
    const err = await onFreshPorts([undefined], async (ports) => {
      starts++;
      throw taken(ports[0]);
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortTakenError);
    expect(starts).toBe(3);
  });

  it('does not start again when the port taken is one the caller gave', async () => {
    let starts = 0;
    await expect(
      onFreshPorts([4100, undefined], async () => {
        starts++;
        throw taken(4100);
      }),
    ).rejects.toThrow(PortTakenError);
    expect(starts).toBe(1);
  });

  it('starts again when sls did not say which port, if it chose any', async () => {
    const tries = async (wanted: (number | undefined)[]) => {
      let starts = 0;
      await onFreshPorts(wanted, async () => {
        starts++;
        throw taken();
      }).catch(() => undefined);
      return starts;
    };
    expect(await tries([4100, undefined])).toBe(3);
    expect(await tries([4100, 4101])).toBe(1);
  });

  it('does not start again after any other failure', async () => {
    let starts = 0;
    await expect(
      onFreshPorts([undefined], async () => {
        starts++;
        throw new Error('the local stack did not start: serverless.yml is broken');
      }),
    ).rejects.toThrow(/broken/);
    expect(starts).toBe(1);
  });
});
