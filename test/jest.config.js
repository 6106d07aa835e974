// Two projects: fast unit tests beside the code (src, *.spec.ts) and HTTP e2e tests on a real PostgreSQL.
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const tsJest = ['ts-jest', { tsconfig: path.join(root, 'tsconfig.json') }];

/** @type {import('jest').Config} */
module.exports = {
  rootDir: root,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  projects: [
    {
      displayName: 'unit',
      rootDir: root,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/src/**/*.spec.ts'],
      transform: { '^.+\\.ts$': tsJest },
    },
    {
      displayName: 'e2e',
      rootDir: root,
      testEnvironment: 'node',
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      transform: { '^.+\\.ts$': tsJest },
      testTimeout: 30000,
    },
  ],
};
