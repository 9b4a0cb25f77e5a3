import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A throwaway PKI shaped like step-ca's: root -> intermediate -> leaf, device leaves carrying the
 * `urn:vigil:device:<id>` URI SAN and CN `device-<id>`. Made with the real openssl CLI (3.0); plus a second,
 * unrelated CA and an expired device certificate for the refusal tests.
 */
const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
[root]
basicConstraints = critical,CA:TRUE,pathlen:1
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca]
default_ca = theca
[theca]
database = index.txt
new_certs_dir = .
serial = serial.txt
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = copy
[anything]
commonName = supplied
`;

export interface Issued {
  /** Leaf first, then the intermediate: what a TLS peer sends. */
  certPem: string;
  keyPem: string;
}

interface Ca {
  cert: string;
  key: string;
  certPem: string;
}

export interface TestPki {
  dir: string;
  rootPem: string;
  foreignRootPem: string;
  server: Issued;
  /** A fresh server certificate (new key and serial) from the same intermediate. */
  renewServer(): Promise<Issued>;
  device(id: string, opts?: { expired?: boolean; foreign?: boolean; cnOnly?: boolean }): Promise<Issued>;
  /** Writes root.crt, server.crt, server.key into dir and returns their paths. */
  writeServerFiles(dir: string): Promise<{ root: string; cert: string; key: string }>;
}

function newKey(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-pki-'));
  const cnf = join(dir, 'openssl.cnf');
  await writeFile(cnf, CONFIG);
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial.txt'), '1000\n');
  let n = 0;
  const openssl = async (args: string[]): Promise<void> => {
    await run('openssl', args, { cwd: dir });
  };

  const makeKey = async (name: string): Promise<{ path: string; pem: string }> => {
    const pem = newKey();
    const path = join(dir, `${name}.key`);
    await writeFile(path, pem, { mode: 0o600 });
    return { path, pem };
  };

  const makeRoot = async (cn: string): Promise<Ca> => {
    const name = `ca${++n}`;
    const key = await makeKey(name);
    const cert = join(dir, `${name}.crt`);
    await openssl(['req', '-config', cnf, '-new', '-x509', '-key', key.path, '-subj', `/CN=${cn}`, '-days', '3650', '-extensions', 'root', '-out', cert]);
    return { cert, key: key.path, certPem: await readFile(cert, 'utf8') };
  };

  /** `openssl req -x509 -CA` signs in one process (OpenSSL 3.0+). */
  const sign = async (issuer: Ca, cn: string, section: string, days: number, sans?: string): Promise<{ certPem: string; keyPem: string; cert: string; key: string }> => {
    const name = `leaf${++n}`;
    const key = await makeKey(name);
    const cert = join(dir, `${name}.crt`);
    await openssl([
      'req', '-config', cnf, '-new', '-x509', '-key', key.path, '-subj', `/CN=${cn}`, '-days', String(days),
      '-CA', issuer.cert, '-CAkey', issuer.key, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-extensions', section,
      ...(sans ? ['-addext', `subjectAltName=${sans}`] : []), '-out', cert,
    ]);
    return { certPem: await readFile(cert, 'utf8'), keyPem: key.pem, cert, key: key.path };
  };

  /** Back-dated validity needs `openssl ca`, the only 3.0 command that takes explicit dates. */
  const signExpired = async (issuer: Ca, cn: string, sans: string): Promise<{ certPem: string; keyPem: string }> => {
    const name = `old${++n}`;
    const key = await makeKey(name);
    const csr = join(dir, `${name}.csr`);
    const cert = join(dir, `${name}.crt`);
    await openssl(['req', '-config', cnf, '-new', '-key', key.path, '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${sans}`, '-out', csr]);
    await openssl([
      'ca', '-batch', '-config', cnf, '-cert', issuer.cert, '-keyfile', issuer.key, '-in', csr, '-out', cert, '-notext',
      '-startdate', '20240101000000Z', '-enddate', '20240201000000Z', '-extensions', 'client',
    ]);
    return { certPem: await readFile(cert, 'utf8'), keyPem: key.pem };
  };

  const root = await makeRoot('Vigil Test Root CA');
  const int = await sign(root, 'Vigil Test Intermediate CA', 'inter', 3650);
  const intermediate: Ca = { cert: int.cert, key: int.key, certPem: int.certPem };
  const foreignRoot = await makeRoot('Someone Else Root CA');
  const fint = await sign(foreignRoot, 'Someone Else Intermediate CA', 'inter', 3650);
  const foreignInt: Ca = { cert: fint.cert, key: fint.key, certPem: fint.certPem };
  const srv = await sign(intermediate, 'localhost', 'server', 30);
  const server: Issued = { certPem: `${srv.certPem}${intermediate.certPem}`, keyPem: srv.keyPem };

  return {
    dir,
    rootPem: root.certPem,
    foreignRootPem: foreignRoot.certPem,
    server,
    async renewServer() {
      const leaf = await sign(intermediate, 'localhost', 'server', 30);
      return { certPem: `${leaf.certPem}${intermediate.certPem}`, keyPem: leaf.keyPem };
    },
    async device(id, opts = {}) {
      const ca = opts.foreign ? foreignInt : intermediate;
      const san = opts.cnOnly ? undefined : `URI:urn:vigil:device:${id}`;
      const leaf = opts.expired
        ? await signExpired(ca, `device-${id}`, san ?? 'DNS:device.invalid')
        : await sign(ca, `device-${id}`, 'client', 2, san);
      if (opts.expired && new Date(new X509Certificate(leaf.certPem).validTo) > new Date()) throw new Error('expected an expired certificate');
      return { certPem: `${leaf.certPem}${ca.certPem}`, keyPem: leaf.keyPem };
    },
    async writeServerFiles(target) {
      await mkdir(target, { recursive: true });
      const paths = { root: join(target, 'root.crt'), cert: join(target, 'server.crt'), key: join(target, 'server.key') };
      await writeFile(paths.root, root.certPem);
      await writeFile(paths.cert, server.certPem);
      await writeFile(paths.key, server.keyPem, { mode: 0o600 });
      return paths;
    },
  };
}

/** A JWK provisioner key like `step crypto jwk create` makes (P-256), as a PKCS#8 PEM file plus its public JWK. */
export async function writeProvisionerKey(dir: string): Promise<{ path: string; publicJwk: Record<string, unknown> }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const path = join(dir, 'provisioner.key');
  await writeFile(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { path, publicJwk: { ...publicKey.export({ format: 'jwk' }) } };
}
