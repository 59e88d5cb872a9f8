/** Three projects so `npm test` runs all and `npx jest --selectProjects unit` runs one. */
const base = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
// Tests that start processes and move real bytes: a longer hang guard (test/helpers/setup-slow.ts).
const slow = { ...base, setupFilesAfterEnv: ['<rootDir>/test/helpers/setup-slow.ts'] };
module.exports = {
  // Two at once even on two cores: the long suites run s3rver in their own single-threaded
  // process and wait on it, so a second worker uses the core they leave idle.
  maxWorkers: 2,
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/helpers/setup-unit.ts'] },
    { ...slow, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'] },
    { ...slow, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
  ],
};
