import type { TokenRequest, TokenSource } from '../identity/token.js';
import type { DeviceFacts } from '../protocol/report.js';
import { enrollResponseSchema, errorBodySchema, PROTOCOL_VERSION, type EnrollRequest } from '../protocol/wire.js';
import { httpsRequest, RequestFailure } from './https-client.js';

export interface EnrollmentSecretTokenOptions {
  controlPlaneUrl: string;
  secret: string;
  /**
   * The pinned step-ca root, read when the token is needed: enrollment pins it (bootstrap) before asking
   * for a token, and the control plane's server certificate chains to the same root.
   */
  rootPem(): Promise<string>;
  facts(): Promise<DeviceFacts>;
  timeoutMs?: number;
}

/** A control-plane refusal or an unusable answer; the message is one line meant for the person enrolling. */
export class EnrollmentError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'EnrollmentError';
  }
}

const MAX_RESPONSE_BYTES = 64 * 1024;

/** Trades an enrollment secret for a step-ca OTT at the control plane (POST /v1/enroll). */
export class EnrollmentSecretToken implements TokenSource {
  constructor(private readonly o: EnrollmentSecretTokenOptions) {}

  async getToken(req: TokenRequest): Promise<string> {
    const url = `${this.o.controlPlaneUrl.replace(/\/+$/, '')}/v1/enroll`;
    const body: EnrollRequest = {
      protocolVersion: PROTOCOL_VERSION,
      enrollmentSecret: this.o.secret.trim(),
      deviceId: req.deviceId,
      facts: await this.o.facts(),
    };
    let res;
    try {
      res = await httpsRequest({
        url,
        method: 'POST',
        body: JSON.stringify(body),
        tls: { ca: await this.o.rootPem() },
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
      throw e.success
        ? new EnrollmentError(e.data.error, `the control plane refused enrollment: ${e.data.message}`)
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
