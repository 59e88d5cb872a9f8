/** Types of infra/web-page.js for the TypeScript tests and benchmarks that build the page. */
import type { PageBundle } from '../lib/page';

/** Builds web/main.tsx: index.html and its hashed JS and CSS, each with its gzip. */
export function buildPage(opts?: { minify?: boolean }): Promise<PageBundle>;
