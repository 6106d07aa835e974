// Integration tests against a real OpenClaw gateway (npm `openclaw`, pinned), started on loopback
// by scripts/openclaw-gateway.sh with a fake OpenAI-compatible model server; plus the real
// PostgreSQL of the e2e suite. `npm run test:gateway`.
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/** @type {import('jest').Config} */
module.exports = {
  rootDir: root,
  displayName: 'gateway',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/gateway/**/*.gateway-spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: path.join(root, 'tsconfig.json') }] },
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  globalSetup: '<rootDir>/test/gateway/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/gateway/support/global-teardown.ts',
  testTimeout: 60000,
};
