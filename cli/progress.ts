/**
 * Download progress on stderr. Only a terminal gets a bar: piped or `--json` runs stay quiet, so
 * scripts see nothing but what they asked for.
 */
export interface Progress {
  /** Total bytes so far. */
  update(bytes: number): void;
  stop(): void;
}

export type ProgressFactory = (label: string, totalBytes: number) => Progress;

export const noProgress: ProgressFactory = () => ({ update() {}, stop() {} });

/** A cli-progress bar per download; loads cli-progress only when a bar will be drawn. */
export async function barProgress(stream: NodeJS.WriteStream): Promise<ProgressFactory> {
  const { SingleBar, Presets } = await import('cli-progress');
  return (label, totalBytes) => {
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
    const all = formatBytes(totalBytes);
    bar.start(totalBytes, 0, { done: formatBytes(0), all });
    return {
      update: (bytes) => bar.update(bytes, { done: formatBytes(bytes) }),
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
