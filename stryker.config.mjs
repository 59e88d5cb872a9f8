// Mutation testing of the deciders: `npm run mutate` (outside CI, not part of `npm test`).
// One file: `npm run mutate -- --mutate lib/settle.ts`; again after a change, reusing the last
// run's results for unchanged code and tests: `npm run mutate -- --incremental`. See TESTING.md.
import { readFileSync } from 'node:fs';

/**
 * `file:first-last`: the lines from the one opening `first` to the closing brace of the one
 * opening `last`, found by name so that edits elsewhere in the file do not shift the range.
 */
function functions(file, first, last) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.includes(first));
  const open = lines.findIndex((l) => l.includes(last));
  const end = lines.findIndex((l, i) => i > open && l === '}');
  if (start < 0 || open < start || end < 0) throw new Error(`stryker.config.mjs: ${first} … ${last} not found in ${file}`);
  return `${file}:${start + 1}-${end + 1}`;
}

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: {
    projectType: 'custom',
    // The unit project only: integration and e2e start s3rver and sls offline.
    configFile: 'jest.unit.config.js',
    enableFindRelatedTests: true,
  },
  mutate: [
    'lib/compare.ts',
    'lib/bytecompare.ts',
    'lib/sync.ts',
    'lib/replicate.ts',
    'lib/read.ts',
    'lib/keys.ts',
    'lib/listing.ts',
    'lib/settle.ts',
    'lib/tombstones.ts',
    'lib/stamps.ts',
    'lib/stores.ts',
    'lib/control.ts',
    'lib/failures.ts',
    // Of upload.ts only the decision: liveElsewhere, mtimeOnceStamped, mtimeFor.
    functions('lib/upload.ts', 'async function liveElsewhere(', 'async function mtimeFor('),
    'lib/delete.ts',
  ],
  coverageAnalysis: 'perTest',
  // A 2-core machine: two jest workers, and room for one of them to be slow.
  concurrency: 2,
  timeoutMS: 10000,
  timeoutFactor: 2,
  // Local data, build output and other runs' sandboxes (--tempDirName .stryker-tmp-NAME, one per
  // file mutated at once) are no part of the unit tests; keep them out of the sandbox.
  ignorePatterns: ['.dfs-data', '.serverless', '.esbuild', '.bench-tmp', 'dist', 'coverage', '.stryker-tmp-*', 'soak-failures'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  clearTextReporter: { logTests: false },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: null },
};
