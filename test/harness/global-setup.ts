import { ensureStepCaBinary } from './stepca-build.js';

/**
 * vitest globalSetup: the step-ca build takes over a minute cold, so it happens once, before any test
 * file starts, instead of inside one file's hook timeout. Later runs hit the cache and return at once.
 * A failed build (no Go toolchain, no Debian source) is reported but does not stop unrelated test files;
 * the step-ca tests then fail with the build error when they start the CA.
 */
export default async function setup(): Promise<void> {
  const say = (line: string) => {
    process.stderr.write(`[step-ca harness] ${line}\n`);
  };
  try {
    await ensureStepCaBinary(say);
  } catch (err) {
    say(`build failed; tests needing step-ca will fail: ${err instanceof Error ? err.message : String(err)}`);
  }
}
