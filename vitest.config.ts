import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 180_000,
    pool: 'forks',
    reporters: ['default', './test/harness/summary-reporter.ts'],
    // Builds step-ca once (about a minute cold, cached under ~/.cache/vigil-test) before any test file runs.
    globalSetup: ['test/harness/global-setup.ts'],
  },
});
