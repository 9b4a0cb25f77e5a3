import { X509Certificate, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { CaClient } from '../identity/ca-client.js';
import type { Logger } from '../logging/logger.js';
import type { CertificateSource, ServerCredentials } from './cert-source.js';
import { mintOtt, type ProvisionerKey } from './ott.js';

export interface StepCaCertificateSourceOptions {
  caUrl: string;
  caRootPem: string;
  rootFingerprint: string;
  provisioner: string;
  provisionerKey: ProvisionerKey;
  /** The server's name: an IP address or a DNS name; it is both the CN and the only SAN. */
  serverName: string;
  logger: Logger;
  /** Renew once less than this fraction of the lifetime is left (as the agent's identity.renewFraction). */
  renewFraction?: number;
  retryMs?: number;
  timeoutMs?: number;
}

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/**
 * The control plane's own TLS certificate from the step-ca it already trusts: it mints itself an OTT with
 * the provisioner key it holds, so agents verify it against the same pinned root and no operator has to
 * issue or rotate a server certificate. Renewal re-runs the same exchange with a fresh key before expiry.
 */
export class StepCaCertificateSource implements CertificateSource {
  private readonly listeners = new Set<() => void>();
  private current: ServerCredentials | undefined;
  private timer: NodeJS.Timeout | undefined;
  private renewAt = 0;
  private closed = false;

  constructor(private readonly o: StepCaCertificateSourceOptions) {}

  async load(): Promise<ServerCredentials> {
    this.current ??= await this.issue();
    return this.current;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    if (this.timer) clearTimeout(this.timer);
  }

  private async issue(): Promise<ServerCredentials> {
    const name = this.o.serverName;
    const x509 = await import('reflect-metadata').then(() => import('@peculiar/x509'));
    const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      {
        name: [{ CN: [name] }],
        keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: isIP(name) ? 'ip' : 'dns', value: name }])],
      },
      webcrypto,
    );
    const { token } = await mintOtt(this.o.provisionerKey, {
      caUrl: this.o.caUrl,
      provisioner: this.o.provisioner,
      rootFingerprint: this.o.rootFingerprint,
      subject: name,
      sans: [name],
    });
    const res = await new CaClient(this.o.caUrl, this.o.caRootPem, this.o.timeoutMs ?? 15_000).sign(csr.toString('pem'), token);
    if (!res.parsed) throw new Error(`step-ca refused the control plane's server certificate (HTTP ${res.status}): ${res.body.slice(0, 200)}`);
    const chain = res.parsed.certChain.length > 0 ? res.parsed.certChain : [res.parsed.crt];
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
    const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
    const leaf = new X509Certificate(res.parsed.crt);
    this.schedule(new Date(leaf.validFrom), new Date(leaf.validTo));
    this.o.logger.info('server certificate issued by step-ca', { component: 'control-plane', serial: leaf.serialNumber, notAfter: leaf.validTo });
    return { cert: chain.map((c) => (c.endsWith('\n') ? c : `${c}\n`)).join(''), key };
  }

  private schedule(notBefore: Date, notAfter: Date): void {
    if (this.closed) return;
    const lifetime = notAfter.getTime() - notBefore.getTime();
    this.renewAt = notAfter.getTime() - lifetime * (this.o.renewFraction ?? 1 / 3);
    this.arm(Math.max(1000, this.renewAt - Date.now()));
  }

  private arm(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    // setTimeout overflows past 2^31-1 ms, so a long wait is taken in steps.
    this.timer = setTimeout(() => void this.renew(), Math.min(ms, 2 ** 31 - 1));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (this.closed) return;
    if (Date.now() < this.renewAt) {
      this.arm(this.renewAt - Date.now());
      return;
    }
    try {
      this.current = await this.issue();
      for (const l of this.listeners) l();
    } catch (err) {
      // The old certificate stays in use until it expires; keep trying meanwhile.
      this.o.logger.error('server certificate renewal failed; will retry', { component: 'control-plane', err });
      this.arm(this.o.retryMs ?? 30_000);
    }
  }
}
