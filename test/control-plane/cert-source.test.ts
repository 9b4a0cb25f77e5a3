import { X509Certificate } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { FileCertificateSource } from '../../src/control-plane/cert-source.js';
import { startControlPlane } from '../../src/control-plane/server.js';
import { silentLogger } from '../../src/logging/logger.js';
import { prepare } from '../helpers/control-plane.js';

function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

describe('server certificate from a CertificateSource', () => {
  it('swaps in a renewed certificate without a restart', async () => {
    const p = await prepare();
    const source = new FileCertificateSource(p.config.tlsCert, p.config.tlsKey, 100);
    const cp = await startControlPlane(p.config, { logger: silentLogger(), certificateSource: source });
    try {
      const before = await servedSerial(cp.port, p.pki.rootPem);
      expect(before.toLowerCase()).toBe(new X509Certificate(p.pki.server.certPem).serialNumber.toLowerCase());
      // A renewer writes the new pair and renames it into place, as `step ca renew` does.
      const renewed = await p.pki.renewServer();
      await writeFile(join(p.dir, 'new.key'), renewed.keyPem);
      await writeFile(join(p.dir, 'new.crt'), renewed.certPem);
      await rename(join(p.dir, 'new.key'), p.config.tlsKey);
      await rename(join(p.dir, 'new.crt'), p.config.tlsCert);
      const expected = new X509Certificate(renewed.certPem).serialNumber.toLowerCase();
      await expect.poll(async () => (await servedSerial(cp.port, p.pki.rootPem)).toLowerCase(), { timeout: 5000, interval: 100 }).toBe(expected);
    } finally {
      await cp.close();
    }
  });
});
