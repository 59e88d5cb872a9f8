/**
 * Progress of transfers (bytes) and of long runs of steps (sync's entries) on stderr. Only a
 * terminal gets a bar: piped or `--json` runs stay quiet, so scripts see nothing but what they
 * asked for.
 */
export interface Progress {
  /** Total done so far, in the bar's unit; `total` when the whole has grown (an unlock's queue). */
  update(done: number, total?: number): void;
  stop(): void;
}

/** What a bar counts: bytes are shown as `1.2 MiB`, anything else as plain numbers. */
export type ProgressUnit = 'bytes' | 'entries';

export type ProgressFactory = (label: string, total: number, unit?: ProgressUnit) => Progress;

export const noProgress: ProgressFactory = () => ({ update() {}, stop() {} });

/** A cli-progress bar per transfer; loads cli-progress only when a bar will be drawn. */
export async function barProgress(stream: NodeJS.WriteStream): Promise<ProgressFactory> {
  const { SingleBar, Presets } = await import('cli-progress');
  return (label, total, unit = 'bytes') => {
    const show = unit === 'bytes' ? formatBytes : (n: number) => String(n);
    const bar = new SingleBar(
      {
        stream,
        format: `${label} [{bar}] {percentage}% | {done} of {all}`,
        hideCursor: true,
        clearOnComplete: true,
        fps: 10,
      },
      Presets.shades_classic,
    );
    bar.start(total, 0, { done: show(0), all: show(total) });
    return {
      update: (done, all) => {
        if (all !== undefined && all !== bar.getTotal()) {
          bar.setTotal(all);
          bar.update(done, { done: show(done), all: show(all) });
        } else bar.update(done, { done: show(done) });
      },
      stop: () => bar.stop(),
    };
  };
}

/** `40 B`, `3.0 KiB`, `12.4 MiB`: binary units, one decimal above bytes. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
