/**
 * Replaces the device's pair as fast as it can (renew and rekey in turn, file key storage) until the
 * parent (crash-safety.test.ts) SIGKILLs it at a random instant. Prints one line per completed swap, naming its kind.
 */
import { IdentityManager } from '../../src/identity/manager.js';
import { config } from './helpers.js';

const stateDir = process.env.VIGIL_TEST_STATE_DIR;
if (!stateDir) throw new Error('VIGIL_TEST_STATE_DIR is not set');
const m = new IdentityManager({ stateDir, config: config({ keyStorage: 'file' }) });
// The parent alternates which kind comes first, so its kills land in both.
const first = Number(process.env.VIGIL_TEST_ROUND ?? '0');
for (let i = first; ; i++) {
  if (i % 2 === 0) {
    await m.renew({ force: true });
    process.stdout.write('renewed\n');
  } else {
    await m.rekey();
    process.stdout.write('rekeyed\n');
  }
}
