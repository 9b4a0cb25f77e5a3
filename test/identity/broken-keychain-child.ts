/**
 * Runs inside `dbus-run-session` with gnome-keyring (see broken-files.test.ts): the built CLI, in keychain key
 * storage, against a sealed key file garbled on disk and a keychain entry deleted behind its back. Prints one
 * JSON line of observations for the parent to assert on.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DATA_KEY_ACCOUNT, keytarStore } from '../../src/identity/key-storage.js';
import { runCliProcess, startCliProcess } from '../helpers.js';

// Through the agent's own loader: keytar is optional, and a literal import would need its typings to typecheck.
const keytar = await keytarStore();

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const stateDir = env('VIGIL_TEST_STATE_DIR');
const caUrl = env('VIGIL_TEST_CA_URL');
const fingerprint = env('VIGIL_TEST_FINGERPRINT');
const tokens = env('VIGIL_TEST_TOKENS').split(' ');
const identityDir = join(stateDir, 'identity');
const vigil = (...args: string[]) => runCliProcess(['--state-dir', stateDir, ...args], process.env);
const shown = async (): Promise<unknown> => JSON.parse((await vigil('identity', '--json')).stdout) as unknown;
const enroll = async (): Promise<void> => {
  const res = await vigil('enroll', '--ca-url', caUrl, '--fingerprint', fingerprint, '--token', tokens.shift() ?? '');
  if (res.code !== 0) throw new Error(`enroll failed: ${res.stderr}`);
};
const sealedKeyFile = async (): Promise<string> => {
  const name = (await readdir(identityDir)).find((n) => n.endsWith('.key.enc'));
  if (!name) throw new Error('no sealed key file');
  return join(identityDir, name);
};

const out: Record<string, unknown> = {};
await enroll();
out.enrolled = await shown();

// Flip bytes in the ciphertext: the structure (magic, length) stays intact, only AES-GCM can tell.
const file = await sealedKeyFile();
const blob = await readFile(file);
for (let i = 40; i < 48; i++) blob[i] = (blob[i] ?? 0) ^ 0xff;
await writeFile(file, blob);
out.garbled = await shown();
out.garbledStatus = (JSON.parse((await vigil('status', '--json')).stdout) as { identity: unknown }).identity;
await enroll();
out.repairedGarbled = await shown();

await keytar.deletePassword('Vigil', DATA_KEY_ACCOUNT);
out.entryDeleted = await shown();

// With a renewal due at once and retries every second, the daemon must say it once and not loop.
const daemon = startCliProcess(['--state-dir', stateDir, 'daemon'], { ...process.env, VIGIL_IDENTITY_RENEW_FRACTION: '0.999', VIGIL_IDENTITY_RETRY_INITIAL_SECONDS: '1' });
await new Promise((r) => setTimeout(r, 5000));
out.daemonNeedsEnrollmentLines = daemon.output().match(/device certificate needs enrollment: the keychain entry/g)?.length ?? 0;
await new Promise((r) => {
  daemon.child.once('exit', r);
  daemon.child.kill('SIGTERM');
});

await enroll();
out.repairedEntry = await shown();
out.renewAfterRepair = (await vigil('renew', '--force')).code;
process.stdout.write(`${JSON.stringify(out)}\n`);
