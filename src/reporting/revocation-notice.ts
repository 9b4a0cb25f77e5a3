import { silentLogger, type Logger } from '../logging/logger.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { PROTOCOL_VERSION, type IdentityRevoked } from '../protocol/wire.js';
import { httpsRequest, RequestFailure, type HttpsResponse, type TlsIdentity, type TlsMaterial } from './https-client.js';
import { errorDetail, parseRetryAfter } from './server-response.js';

export const REVOKED_PATH = '/v1/identity/revoked';

/**
 * One POST /v1/identity/revoked over mTLS with the certificate in question: it no longer speaks for the
 * device, because the CA refused to renew it or `vigil unenroll` gives it up.
 */
export function postCertificateGone(
  baseUrl: string,
  tls: TlsMaterial,
  serialHex: string,
  reason: IdentityRevoked['reason'],
  timeoutMs: number,
): Promise<HttpsResponse> {
  const body: IdentityRevoked = { protocolVersion: PROTOCOL_VERSION, serial: serialHex.toLowerCase(), reason };
  return httpsRequest({
    url: `${baseUrl.replace(/\/+$/, '')}${REVOKED_PATH}`,
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
    tls,
    timeoutMs,
    maxBytes: 64 * 1024,
  });
}

/** A 403 `device-revoked` means the server already refuses the device: what telling it was for. */
export function certificateGoneAccepted(res: HttpsResponse): boolean {
  return (res.status >= 200 && res.status < 300) || (res.status === 403 && /^device-revoked\b/.test(errorDetail(res.body.toString('utf8'))));
}

export interface RevocationNoticeOptions {
  baseUrl: string;
  /** The device certificate the CA refused: still the one the control plane knows this device by. */
  identity: TlsIdentity;
  /** Persists that the server has been told, so a restart does not tell it again. */
  markReported(serial: string): Promise<void>;
  logger?: Logger;
  timeoutMs: number;
  backoff?: BackoffOptions;
  random?: () => number;
}

/**
 * Tells the control plane, once per certificate, that the CA refused to renew it, so the server stops
 * treating the device as compliant without waiting for the certificate to expire. Network trouble, 5xx and
 * 429 are retried with backoff; 204, or a 403 saying the device is already revoked there, is done. Any other
 * answer cannot improve by repeating it, so it is logged and given up until the daemon restarts.
 */
export class RevocationNotifier {
  private readonly log: Logger;
  private readonly backoff: BackoffOptions;
  private readonly handled = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly o: RevocationNoticeOptions) {
    this.log = (o.logger ?? silentLogger()).child({ component: 'reporter' });
    this.backoff = o.backoff ?? { baseMs: 2000, capMs: 15 * 60_000 };
  }

  /** `serialHex` as IdentityStatus.serial; repeated calls for the same serial are ignored. */
  notify(serialHex: string): void {
    if (this.stopped || this.handled.has(serialHex)) return;
    this.handled.add(serialHex);
    this.attempt(serialHex, 0);
  }

  private attempt(serial: string, failures: number): void {
    const run = this.post(serial, failures).then(
      (retryInMs) => {
        if (retryInMs === undefined || this.stopped) return;
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.attempt(serial, failures + 1);
        }, retryInMs);
        this.timers.add(timer);
      },
      (err: unknown) => {
        this.log.error(`could not tell the control plane that certificate ${serial} was refused: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  /** One POST; resolves with the delay before the next try, or undefined when there is nothing more to do. */
  private async post(serial: string, failures: number): Promise<number | undefined> {
    const tls = await this.o.identity.current();
    const retry = (why: string, retryAfterMs?: number): number => {
      const delay = retryAfterMs ?? backoffDelay(failures, this.backoff, this.o.random);
      this.log.warn(`telling the control plane that certificate ${serial} was refused failed (${why}); retrying in ${Math.round(delay / 1000)} s`);
      return delay;
    };
    let res: HttpsResponse;
    try {
      res = await postCertificateGone(this.o.baseUrl, tls, serial, 'ca-refused-renewal', this.o.timeoutMs);
    } catch (err) {
      if (err instanceof RequestFailure) return retry(err.message);
      throw err;
    }
    const text = res.body.toString('utf8');
    if (certificateGoneAccepted(res)) {
      await this.o.markReported(serial);
      this.log.info(`told the control plane that certificate ${serial} was refused by the CA`, { status: res.status });
      return undefined;
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) return retry(`HTTP ${res.status}`, parseRetryAfter(res.headers['retry-after'], Date.now()));
    this.log.error(`the control plane refused the notice that certificate ${serial} was refused (HTTP ${res.status} ${errorDetail(text)}); not retried until the daemon restarts`);
    return undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all([...this.inFlight]);
  }
}
