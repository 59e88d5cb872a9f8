/**
 * Peak resident memory of this process: `process.memoryUsage.rss()` sampled every 50 ms, and
 * the kernel's own high-water mark (`resourceUsage().maxRSS`, which also sees peaks between
 * samples). `baseline` is taken at start, after the modules are loaded. `memoryUsage.rss()`
 * rather than `memoryUsage()`: the latter walks the heap's spaces, which showed as 3 % of a
 * compare's CPU profile.
 */
export interface RssReport {
  baselineBytes: number;
  sampledPeakBytes: number;
  maxRssBytes: number;
  /** The larger of the two peaks. */
  peakBytes: number;
  samples: number;
}

export function sampleRss(intervalMs = 50): { stop(): RssReport } {
  const baselineBytes = process.memoryUsage.rss();
  let peak = baselineBytes;
  let samples = 1;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
    samples++;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage.rss());
      const maxRssBytes = process.resourceUsage().maxRSS * 1024;
      return { baselineBytes, sampledPeakBytes: peak, maxRssBytes, peakBytes: Math.max(peak, maxRssBytes), samples };
    },
  };
}
