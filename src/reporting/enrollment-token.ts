import type { TokenRequest, TokenSource } from '../identity/token.js';
import type { DeviceFacts } from '../protocol/report.js';
import { enrollResponseSchema, errorBodySchema, PROTOCOL_VERSION, type EnrollRequest } from '../protocol/wire.js';
import { httpsRequest, RequestFailure, type TlsMaterial } from './https-client.js';

export interface EnrollmentSecretTokenOptions {
  controlPlaneUrl: string;
  secret: string;
  facts(): Promise<DeviceFacts>;
  /** The device's mTLS credentials once enrolled, to confirm the enrollment with. */
  clientTls(): Promise<TlsMaterial>;
  timeoutMs?: number;
  /**
   * How long to keep retrying while the control plane answers 429 (a rollout of many laptops at once),
   * waiting its Retry-After each time. Default 10 minutes.
   */
  rateLimitBudgetMs?: number;
  /** Told before each wait, so a person at the keyboard knows why nothing happens. */
  onRateLimited?(waitSeconds: number, message: string): void;
  sleep?: (ms: number) => Promise<void>;
}

/** A control-plane refusal or an unusable answer; the message is one line meant for the person enrolling. */
export class EnrollmentError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** Set on a 429: the server's Retry-After. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'EnrollmentError';
  }
}

const MAX_RESPONSE_BYTES = 64 * 1024;

/** Trades an enrollment secret for a step-ca OTT at the control plane (POST /v1/enroll). */
export class EnrollmentSecretToken implements TokenSource {
  /** The control plane's deviceCertDuration, learned with the token. */
  notAfter: string | undefined;

  constructor(private readonly o: EnrollmentSecretTokenOptions) {}

  async getToken(req: TokenRequest): Promise<string> {
    const deadline = Date.now() + (this.o.rateLimitBudgetMs ?? 600_000);
    const sleep = this.o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    for (;;) {
      try {
        return await this.requestToken(req);
      } catch (err) {
        if (!(err instanceof EnrollmentError) || err.retryAfterSeconds === undefined) throw err;
        // Spread the retries of a fleet that was refused together: up to a quarter more than asked.
        const waitMs = err.retryAfterSeconds * 1000 * (1 + Math.random() / 4);
        if (Date.now() + waitMs > deadline) throw err;
        this.o.onRateLimited?.(Math.ceil(waitMs / 1000), err.message);
        await sleep(waitMs);
      }
    }
  }

  async afterEnrollment(): Promise<string | undefined> {
    const url = `${this.o.controlPlaneUrl.replace(/\/+$/, '')}/v1/enroll/confirm`;
    try {
      const res = await httpsRequest({ url, method: 'POST', tls: await this.o.clientTls(), timeoutMs: this.o.timeoutMs ?? 15_000, maxBytes: MAX_RESPONSE_BYTES });
      if (res.status === 200) return undefined;
      const e = errorBodySchema.safeParse(parseJson(res.body.toString('utf8')));
      return `the control plane did not confirm the enrollment (HTTP ${res.status}${e.success ? `: ${e.data.message}` : ''})`;
    } catch (err) {
      return `could not confirm the enrollment at ${url} (${err instanceof Error ? err.message : String(err)}); the first report will`;
    }
  }

  private async requestToken(req: TokenRequest): Promise<string> {
    const url = `${this.o.controlPlaneUrl.replace(/\/+$/, '')}/v1/enroll`;
    const body: EnrollRequest = {
      protocolVersion: PROTOCOL_VERSION,
      enrollmentSecret: this.o.secret.trim(),
      deviceId: req.deviceId,
      facts: await this.o.facts(),
      // The CA signs only the names the token lists, so the server must hear of the DNS names in our CSR.
      dnsNames: req.sans.filter((s) => !s.includes(':')),
    };
    let res;
    try {
      res = await httpsRequest({
        url,
        method: 'POST',
        body: JSON.stringify(body),
        // The device's current certificate, if it has one (expired, typically), proves that this is the device
        // enrolling itself again; the control plane refuses to hand an enrolled ID to anyone else.
        tls: { ca: req.rootPem, ...(req.current ? { cert: req.current.certChainPem, key: req.current.keyPem } : {}) },
        timeoutMs: this.o.timeoutMs ?? 15_000,
        maxBytes: MAX_RESPONSE_BYTES,
      });
    } catch (err) {
      const why = err instanceof RequestFailure ? err.message : err instanceof Error ? err.message : String(err);
      throw new EnrollmentError('unreachable', `cannot reach the control plane at ${url}: ${why}`);
    }
    const json = parseJson(res.body.toString('utf8'));
    if (res.status !== 200) {
      const e = errorBodySchema.safeParse(json);
      const retryAfter = Number(res.headers['retry-after']);
      throw e.success
        ? new EnrollmentError(
            e.data.error,
            `the control plane refused enrollment: ${e.data.message}`,
            res.status === 429 && Number.isFinite(retryAfter) && retryAfter >= 0 ? Math.min(retryAfter, 3600) : undefined,
          )
        : new EnrollmentError('rejected', `the control plane refused enrollment (HTTP ${res.status})`);
    }
    const parsed = enrollResponseSchema.safeParse(json);
    if (!parsed.success) throw new EnrollmentError('invalid-response', `the control plane at ${url} sent an invalid enrollment response`);
    const r = parsed.data;
    // The CA only signs what the token names; a mismatch would spend the token on a certain refusal.
    const sameSans = r.sans.length === req.sans.length && r.sans.every((s) => req.sans.includes(s));
    if (r.deviceId !== req.deviceId || r.subject !== req.subject || !sameSans) {
      throw new EnrollmentError(
        'subject-mismatch',
        `the control plane issued a token for ${r.subject} [${r.sans.join(', ')}], but this device asks for ${req.subject} [${req.sans.join(', ')}]; check identity.subject and identity.domain`,
      );
    }
    this.notAfter = r.notAfter;
    return r.ott;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
