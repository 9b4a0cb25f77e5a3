import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/logging/logger.js';
import { serveConfigSchema, type ServeConfig } from '../../src/control-plane/config.js';
import { startControlPlane, type RunningControlPlane } from '../../src/control-plane/server.js';
import { createTestPki, writeProvisionerKey, type TestPki } from './pki.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface Harness {
  pki: TestPki;
  /** Serials (hex) the control plane asked the CA to revoke. */
  caRevoked: string[];
  dir: string;
  config: ServeConfig & { dataDir: string };
  provisionerPublicJwk: JsonWebKeyLike;
  cp: RunningControlPlane;
}

type JsonWebKeyLike = Record<string, unknown>;

/** Writes the files a real deployment has (root, server cert, provisioner key, admin token) and a config. */
export async function prepare(overrides: Partial<ServeConfig> = {}, pki?: TestPki) {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-cp-'));
  const thePki = pki ?? (await createTestPki());
  const files = await thePki.writeServerFiles(dir);
  const prov = await writeProvisionerKey(dir);
  const tokenFile = join(dir, 'admin.token');
  await writeFile(tokenFile, `${ADMIN_TOKEN}\n`, { mode: 0o600 });
  const config = serveConfigSchema.parse({
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'data'),
    caUrl: 'https://ca.test:9000',
    caRoot: files.root,
    provisioner: 'vigil-enroll',
    provisionerKey: prov.path,
    adminTokenFile: tokenFile,
    tlsCert: files.cert,
    tlsKey: files.key,
    enrollBurst: 100,
    enrollPerMinute: 600,
    ...overrides,
  });
  // Tests read the SQLite files in the data dir, so it is always set here (PostgreSQL tests just don't use it).
  return { dir, pki: thePki, config: { ...config, dataDir: config.dataDir ?? join(dir, 'data') }, provisionerPublicJwk: prov.publicJwk };
}

/** `consoleDir`: where the admin console's built files are (default: dist/console). */
export async function startHarness(overrides: Partial<ServeConfig> = {}, pki?: TestPki, opts: { consoleDir?: string } = {}): Promise<Harness> {
  const p = await prepare(overrides, pki);
  const caRevoked: string[] = [];
  // No step-ca here: revocations are recorded. The e2e tests revoke at a real step-ca.
  const revokeAtCa = (serial: string): Promise<'revoked'> => {
    caRevoked.push(serial);
    return Promise.resolve('revoked');
  };
  const cp = await startControlPlane(p.config, { logger: silentLogger(), ssePingMs: 1000, revokeAtCa, ...opts });
  return { ...p, caRevoked, cp };
}

/** The same server again on the harness's data dir, as after a restart. */
export async function restartHarness(h: Harness): Promise<Harness> {
  await h.cp.close();
  const cp = await startControlPlane(h.config, {
    logger: silentLogger(),
    ssePingMs: 1000,
    revokeAtCa: (serial) => {
      h.caRevoked.push(serial);
      return Promise.resolve('revoked');
    },
  });
  return { ...h, cp };
}
