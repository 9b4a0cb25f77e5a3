import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { ensureStepCaBinary } from './stepca-build.js';
import { freePort } from '../helpers.js';

const execFileP = promisify(execFile);

/** Duration strings as step-ca parses them (Go's time.ParseDuration). */
export interface StepCaClaims {
  minTLSCertDuration?: string;
  maxTLSCertDuration?: string;
  defaultTLSCertDuration?: string;
  /** Lets a certificate renew (with a token signed by its key) after it expired. */
  allowRenewalAfterExpiry?: boolean;
}

export interface StepCaOptions {
  claims?: StepCaClaims;
  /** step-ca backdates NotBefore by 1 min by default; tests want lifetimes that are exactly the duration. */
  backdate?: string;
  provisionerName?: string;
}

export interface TokenOptions {
  subject: string;
  sans: string[];
  /** Defaults to `<url>/1.0/sign`. */
  audience?: string;
  /** Seconds relative to now. */
  notBefore?: number;
  expiresIn?: number;
  issuedAt?: number;
  issuer?: string;
  /** Sign with a key the CA has never seen (an unknown provisioner). */
  foreignKey?: boolean;
  /** Overrides the `sha` claim (root fingerprint). */
  sha?: string;
}

export interface StepCa {
  url: string;
  port: number;
  dir: string;
  rootPem: string;
  /** Lower-case hex SHA-256 of the root's DER, what `step ca bootstrap --fingerprint` takes. */
  rootFingerprint: string;
  provisionerName: string;
  /** The JWK provisioner's private key (PKCS#8 PEM), for a control plane that mints tokens itself. */
  provisionerKeyPem(): Promise<string>;
  token(opts: TokenOptions): Promise<string>;
  logs(): string;
  running(): boolean;
  stop(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}


async function openssl(cwd: string, args: string[]): Promise<void> {
  await execFileP('openssl', args, { cwd });
}

/** A throwaway two-tier PKI made with the openssl CLI, independent of the code under test. */
async function makePki(dir: string, password: string): Promise<void> {
  await writeFile(join(dir, 'password.txt'), password, { mode: 0o600 });
  // One config for every step: openssl's system config would add its own v3_ca extensions.
  await writeFile(
    join(dir, 'openssl.cnf'),
    [
      '[req]',
      'distinguished_name=dn',
      '[dn]',
      '[root]',
      'basicConstraints=critical,CA:TRUE,pathlen:1',
      'keyUsage=critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier=hash',
      '[intermediate]',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      'keyUsage=critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid:always',
      '',
    ].join('\n'),
  );
  await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root_ca_key']);
  await openssl(dir, [
    'req', '-x509', '-new', '-key', 'root_ca_key', '-subj', '/O=Vigil Test/CN=Vigil Test Root CA', '-days', '2',
    '-sha256', '-config', 'openssl.cnf', '-extensions', 'root', '-out', 'root_ca.crt',
  ]);
  await openssl(dir, [
    'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes-256-cbc',
    '-pass', 'file:password.txt', '-out', 'intermediate_ca_key',
  ]);
  await openssl(dir, [
    'req', '-new', '-key', 'intermediate_ca_key', '-passin', 'file:password.txt', '-config', 'openssl.cnf',
    '-subj', '/O=Vigil Test/CN=Vigil Test Intermediate CA', '-out', 'intermediate.csr',
  ]);
  await openssl(dir, [
    'x509', '-req', '-in', 'intermediate.csr', '-CA', 'root_ca.crt', '-CAkey', 'root_ca_key', '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', 'openssl.cnf', '-extensions', 'intermediate', '-out', 'intermediate_ca.crt',
  ]);
}

function httpsGet(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * Starts a real step-ca 0.19 on a random loopback port with a fresh PKI and one JWK provisioner.
 * The binary comes from the cache filled by global-setup.ts (or is built here on first use).
 */
export async function startStepCa(opts: StepCaOptions = {}): Promise<StepCa> {
  const bin = await ensureStepCaBinary();
  const dir = await mkdtemp(join(tmpdir(), 'vigil-stepca-'));
  const password = randomUUID();
  await makePki(dir, password);
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const rootPem = await readFile(join(dir, 'root_ca.crt'), 'utf8');
  const rootFingerprint = createHash('sha256').update(new X509Certificate(rootPem).raw).digest('hex');

  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk: JWK = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const provisionerName = opts.provisionerName ?? 'vigil-test@example.com';
  const claims: StepCaClaims = {
    minTLSCertDuration: '5s',
    maxTLSCertDuration: '24h',
    defaultTLSCertDuration: '2m',
    ...opts.claims,
  };
  const caJson = {
    root: join(dir, 'root_ca.crt'),
    crt: join(dir, 'intermediate_ca.crt'),
    key: join(dir, 'intermediate_ca_key'),
    address: `127.0.0.1:${port}`,
    dnsNames: ['127.0.0.1', 'localhost'],
    logger: { format: 'text' },
    db: { type: 'badgerv2', dataSource: join(dir, 'db') },
    authority: {
      backdate: opts.backdate ?? '1s',
      provisioners: [
        { type: 'JWK', name: provisionerName, key: { ...publicJwk, kid, use: 'sig', alg: 'ES256' }, claims },
      ],
    },
    tls: { minVersion: 1.2, maxVersion: 1.3, renegotiation: false },
  };
  const cfgPath = join(dir, 'ca.json');
  await writeFile(cfgPath, JSON.stringify(caJson, null, 2));

  let child: ChildProcess | undefined;
  let log = '';

  const start = async (): Promise<void> => {
    const proc = spawn(bin, [cfgPath, join(dir, 'password.txt')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    live.add(proc);
    const status = { exited: false };
    proc.on('exit', () => {
      status.exited = true;
      live.delete(proc);
    });
    proc.stdout.on('data', (d: Buffer) => {
      log += d.toString();
    });
    proc.stderr.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (status.exited) throw new Error(`step-ca exited during start:\n${log}`);
      try {
        if ((await httpsGet(`${url}/health`, rootPem)) === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`step-ca did not become healthy:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => { r(); }));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  const signingKey = privateKey;
  let foreign: { key: CryptoKey; kid: string } | undefined;

  const token = async (t: TokenOptions): Promise<string> => {
    let key = signingKey;
    let useKid = kid;
    if (t.foreignKey) {
      if (!foreign) {
        const pair = await generateKeyPair('ES256');
        foreign = { key: pair.privateKey, kid: await calculateJwkThumbprint(await exportJWK(pair.publicKey)) };
      }
      key = foreign.key;
      useKid = foreign.kid;
    }
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ sans: t.sans, sha: t.sha ?? rootFingerprint })
      .setProtectedHeader({ alg: 'ES256', kid: useKid, typ: 'JWT' })
      .setIssuer(t.issuer ?? provisionerName)
      .setSubject(t.subject)
      .setAudience(t.audience ?? `${url}/1.0/sign`)
      .setIssuedAt(now + (t.issuedAt ?? 0))
      .setNotBefore(now + (t.notBefore ?? 0))
      .setExpirationTime(now + (t.expiresIn ?? 300))
      .setJti(randomUUID())
      .sign(key);
  };

  await start();
  return {
    url,
    port,
    dir,
    rootPem,
    rootFingerprint,
    provisionerName,
    provisionerKeyPem: () => exportPKCS8(signingKey),
    token,
    logs: () => log,
    running: () => child?.exitCode === null,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
