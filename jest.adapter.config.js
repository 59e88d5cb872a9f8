/**
 * The store adapter's own unit tests (lib/stores.ts), for mutation testing it: every unit test
 * reaches the adapter through the domain, so with the whole unit project each of its ~470
 * mutants runs ~1,200 tests (hours on two cores). Its own tests alone give a score that can
 * only be lower than the whole project's. `npm run mutate:adapter`.
 */
const unit = require('./jest.unit.config.js');

module.exports = { ...unit, testMatch: ['<rootDir>/test/unit/stores.test.ts', '<rootDir>/test/unit/stores-*.test.ts'] };
