/** Two projects: fast unit tests, and end-to-end tests against the real local stack (started once). */
const tsJest = ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json' }];

module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      roots: ['<rootDir>/control-plane/src'],
      testMatch: ['**/*.spec.ts'],
      transform: { '^.+\\.ts$': tsJest },
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.e2e.ts'],
      transform: { '^.+\\.ts$': tsJest },
      // Real services: deleting an analysis waits for its deployment, a Flink job start takes seconds.
      testTimeout: 120_000,
      globalSetup: '<rootDir>/test/setup/global-setup.mjs',
      globalTeardown: '<rootDir>/test/setup/global-teardown.mjs',
    },
  ],
};
