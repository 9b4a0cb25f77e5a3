/**
 * Device identity against a local step-ca 0.19 (the test harness): enrollment from key generation to a
 * stored, verified certificate, and renewal over mTLS. Median and p95 over BENCH_RUNS (default 50).
 * Each enrollment gets a fresh one-time token, minted outside the timed region.
 *
 *   npx tsx bench/identity.ts                                  # file key storage, P-256
 *   BENCH_KEY_TYPE=rsa-3072 npx tsx bench/identity.ts
 *   keychain mode: run under a Secret Service, e.g. dbus-run-session (see test/identity/keychain.test.ts)
 *     BENCH_KEY_STORAGE=keychain HOME=<keyring home> dbus-run-session -- sh -c \
 *       'gnome-keyring-daemon --start --components=secrets; npx tsx bench/identity.ts'
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityConfigSchema } from '../src/config/sections/identity.js';
import { IdentityManager } from '../src/identity/manager.js';
import { StaticToken } from '../src/identity/token.js';
import { startStepCa } from '../test/harness/stepca.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 50);
const keyType = process.env.BENCH_KEY_TYPE ?? 'ec-p256';
const keyStorage = process.env.BENCH_KEY_STORAGE ?? 'file';

function stats(samples: number[]): { median: number; p95: number; min: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { median: at(0.5), p95: at(0.95), min: s[0] ?? Number.NaN, max: s.at(-1) ?? Number.NaN };
}

function line(name: string, samples: number[]): string {
  const st = stats(samples);
  return `${name.padEnd(34)} median ${st.median.toFixed(1)} ms   p95 ${st.p95.toFixed(1)} ms   (min ${st.min.toFixed(1)}, max ${st.max.toFixed(1)}, n=${samples.length})`;
}

const ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
const stateDir = mkdtempSync(join(tmpdir(), 'vigil-bench-identity-'));
try {
  const config = identityConfigSchema.parse({ keyType, keyStorage, domain: 'example.com' });
  const m = new IdentityManager({ stateDir, config });
  const { request, tokenSans } = await m.requestedSubject();
  const mint = async () => new StaticToken(await ca.token({ subject: request.commonName, sans: tokenSans }));

  const t0 = performance.now();
  await m.bootstrap(ca.url, ca.rootFingerprint);
  const bootstrapMs = performance.now() - t0;

  // One untimed enrollment loads the lazy modules (x509, keytar) so the runs measure steady state.
  await m.enroll({ token: await mint() });

  const enroll: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const token = await mint();
    const start = performance.now();
    const s = await m.enroll({ token });
    enroll.push(performance.now() - start);
    if (s.state !== 'valid') throw new Error(`enrollment ${i} ended in state ${s.state}`);
  }

  const renew: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    const r = await m.renew({ force: true });
    renew.push(performance.now() - start);
    if (r.action !== 'renewed') throw new Error(`renewal ${i}: ${r.action}`);
  }

  process.stdout.write(
    [
      `identity bench: step-ca 0.19 on loopback, key ${keyType}, storage ${keyStorage}, ${RUNS} runs`,
      `${'bootstrap (fetch + pin root)'.padEnd(34)} ${bootstrapMs.toFixed(1)} ms (once)`,
      line('enroll (keygen -> verified, stored)', enroll),
      line('renew (mTLS -> verified, stored)', renew),
      '',
    ].join('\n'),
  );
} finally {
  await ca.close();
  rmSync(stateDir, { recursive: true, force: true });
}
