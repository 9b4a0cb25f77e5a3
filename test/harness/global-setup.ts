import { ensureStepCaBinary } from './stepca-build.js';

/**
 * vitest globalSetup: the step-ca build takes over a minute cold, so it happens once, before any test
 * file starts, instead of inside one file's hook timeout. Later runs hit the cache and return at once.
 */
export default async function setup(): Promise<void> {
  await ensureStepCaBinary((line) => {
    process.stderr.write(`[step-ca harness] ${line}\n`);
  });
}
