import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // argon2id at OWASP's minimum costs real CPU; the machines have two cores.
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
    // Each says once, in one line, when the browser or service tests are skipped (or fails where they are required).
    globalSetup: ['test/e2e/global-setup.ts', 'test/helpers/services-setup.ts'],
  },
});
