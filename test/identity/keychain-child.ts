/**
 * Runs inside `dbus-run-session` with gnome-keyring (see keychain.test.ts): the identity code with the real
 * keytar against a real Secret Service. Prints one JSON line of observations for the parent to assert on.
 */
import { IdentityError } from '../../src/identity/errors.js';
import { DATA_KEY_ACCOUNT, keytarStore } from '../../src/identity/key-storage.js';
import { IdentityManager } from '../../src/identity/manager.js';
import { StaticToken } from '../../src/identity/token.js';
import { config, currentKeySecret } from './helpers.js';

// Through the agent's own loader: keytar is optional, and a literal import would need its typings to typecheck.
const keytar = await keytarStore();

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const stateDir = env('VIGIL_TEST_STATE_DIR');
const cfg = config({ keyStorage: 'keychain' });
const fresh = () => new IdentityManager({ stateDir, config: cfg });
const errorOf = (e: unknown) => (e instanceof IdentityError ? { code: e.code, message: e.message } : { code: 'other', message: String(e) });

const out: Record<string, unknown> = {};
const m = fresh();
await m.enroll({ caUrl: env('VIGIL_TEST_CA_URL'), fingerprint: env('VIGIL_TEST_FINGERPRINT'), token: new StaticToken(env('VIGIL_TEST_TOKEN')) });
out.enrolled = await m.status();
const dataKey = await keytar.getPassword('Vigil', DATA_KEY_ACCOUNT);
out.dataKeyBytes = dataKey === null ? 0 : Buffer.from(dataKey, 'base64').length;
out.secretHex = (await currentKeySecret(m)).secret.toString('hex');

// A new process (new manager) unseals the key through the keychain and renews over mTLS with it.
const renewed = await fresh().renew({ force: true });
out.renewed = renewed.action;
out.afterRenew = await fresh().status();

// The keychain entry disappears (user wiped the keychain): a clear error, and status flags it.
const saved = dataKey ?? '';
await keytar.deletePassword('Vigil', DATA_KEY_ACCOUNT);
const m2 = fresh();
out.missingEntry = await m2.renew({ force: true }).then(() => undefined, errorOf);
out.missingEntryState = (await m2.status()).state;
await keytar.setPassword('Vigil', DATA_KEY_ACCOUNT, saved);

const un = await fresh().unenroll();
out.unenrolled = un;
out.dataKeyAfterUnenroll = await keytar.getPassword('Vigil', DATA_KEY_ACCOUNT);
process.stdout.write(`${JSON.stringify(out)}\n`);
