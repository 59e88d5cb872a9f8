// Mutation testing of the store adapter (lib/stores.ts) by its own unit tests: `npm run mutate:adapter`.
// See jest.adapter.config.js for why not the whole unit project.
import base from './stryker.config.mjs';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  ...base,
  jest: { ...base.jest, configFile: 'jest.adapter.config.js' },
  mutate: ['lib/stores.ts'],
  tempDirName: '.stryker-tmp-adapter',
  htmlReporter: { fileName: 'reports/mutation/adapter.html' },
  jsonReporter: { fileName: 'reports/mutation/adapter.json' },
};
