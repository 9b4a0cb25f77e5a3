import { decodeJwt, decodeProtectedHeader } from 'jose';
import { IdentityError } from './errors.js';
import { caErrorMessage } from './ca-client.js';

export interface TokenRequest {
  caUrl: string;
  /**
   * The CA root the enrollment trusts, verified by its fingerprint: the control plane's server certificate
   * chains to it. Not yet pinned on disk when this is a first enrollment: that happens only once it succeeds.
   */
  rootPem: string;
  /** What the token's `sub` must be: the CSR's CN. */
  subject: string;
  /** What the token's `sans` must be: the CSR's SANs. */
  sans: string[];
  deviceId: string;
  /**
   * The certificate this device holds now, even expired, with its key: a control plane presented with it on
   * the enrollment request knows the device is re-enrolling itself, not being taken over. Absent when there
   * is none or it cannot be read.
   */
  current?: { certChainPem: string; keyPem: string };
}

/**
 * Where an enrollment one-time token comes from: an admin pastes one (StaticToken), or the control plane mints
 * one in exchange for an enrollment secret. Either way the rest of enrollment is the same.
 */
export interface TokenSource {
  getToken(req: TokenRequest): Promise<string>;
  /**
   * The certificate lifetime the token's issuer asked for along with the last token (a duration such as
   * "720h"), sent to the CA as the sign request's `notAfter`. Undefined: the provisioner's default.
   */
  readonly notAfter?: string | undefined;
  /**
   * Told once the certificate is stored. The control plane counts a device as enrolled (and spends the
   * secret's use) only when it first shows its certificate; this is that first showing. Returns a warning
   * when it could not be done now (the daemon's first report will do it).
   */
  afterEnrollment?(): Promise<string | undefined>;
}

export class StaticToken implements TokenSource {
  constructor(private readonly token: string) {}
  getToken(): Promise<string> {
    return Promise.resolve(this.token.trim());
  }
}

export interface OttClaims {
  kid: string | undefined;
  iss: string | undefined;
  sub: string | undefined;
  aud: string[];
  exp: number | undefined;
  nbf: number | undefined;
  sha: string | undefined;
  sans: string[];
}

/** Reads an OTT's claims without verifying it: only the CA can; this is for diagnosis and pre-checks. */
export function decodeOtt(token: string): OttClaims {
  try {
    const header = decodeProtectedHeader(token);
    const c = decodeJwt(token);
    const aud = c.aud === undefined ? [] : Array.isArray(c.aud) ? c.aud : [c.aud];
    const sans = Array.isArray(c.sans) ? c.sans.filter((s): s is string => typeof s === 'string') : [];
    return {
      kid: header.kid,
      iss: c.iss,
      sub: c.sub,
      aud,
      exp: c.exp,
      nbf: c.nbf,
      sha: typeof c.sha === 'string' ? c.sha.toLowerCase() : undefined,
      sans,
    };
  } catch (err) {
    throw new IdentityError('token-malformed', 'the enrollment token is not a JWT; paste the whole output of `step ca token`', {
      cause: err,
    });
  }
}

/** Checks that need no CA, done before sending so a token meant for another CA is not spent. */
export function precheckToken(claims: OttClaims, pinnedFingerprint: string): void {
  if (claims.sha !== undefined && claims.sha !== pinnedFingerprint) {
    throw new IdentityError(
      'token-root',
      `the token was made for a CA whose root fingerprint is ${claims.sha}, but the pinned root is ${pinnedFingerprint}; get a token from this CA`,
    );
  }
}

function normalizeUrl(u: string): string {
  return u.replace(/\/+$/, '').toLowerCase();
}

export interface ProvisionerRef {
  name: string;
  kid: string | undefined;
}

export interface RejectionContext {
  status: number;
  /** step-ca's JSON error body, if any. */
  body: string;
  claims: OttClaims;
  caUrl: string;
  /** The CA's clock (its Date header): what matters for expiry, not ours. */
  caNow: Date;
  /** From GET /provisioners; undefined when the list could not be fetched. */
  provisioners: ProvisionerRef[] | undefined;
}

/** step-ca's own leeway on exp/nbf (go-jose's DefaultLeeway). */
const LEEWAY_S = 60;

/**
 * step-ca 0.19 answers every token problem on /1.0/sign with the same generic 401 ("lacked necessary
 * authorization"; the reason is only in the CA's log). So the reason is reconstructed from the token's own
 * claims against what the CA publishes, and "already used" is what remains once every other cause is ruled
 * out.
 */
export function diagnoseSignRejection(ctx: RejectionContext): IdentityError {
  const { claims } = ctx;
  const message = caErrorMessage(ctx.body);
  if (ctx.status !== 401) {
    return new IdentityError('ca-rejected', `the CA refused the certificate request (HTTP ${ctx.status}: ${message ?? 'no details'})`);
  }
  const base = normalizeUrl(ctx.caUrl);
  const accepted = [`${base}/1.0/sign`, `${base}/sign`];
  if (!claims.aud.some((a) => accepted.includes(normalizeUrl(a)))) {
    return new IdentityError(
      'token-audience',
      `the token is for audience ${claims.aud.join(', ') || '(none)'}, not this CA (${base}/1.0/sign); make a new token with --ca-url ${ctx.caUrl}`,
    );
  }
  const now = Math.floor(ctx.caNow.getTime() / 1000);
  if (claims.exp !== undefined && claims.exp + LEEWAY_S < now) {
    return new IdentityError(
      'token-expired',
      `the token expired at ${new Date(claims.exp * 1000).toISOString()}; ask for a new one (tokens last minutes)`,
    );
  }
  if (claims.nbf !== undefined && claims.nbf - LEEWAY_S > now) {
    return new IdentityError(
      'token-not-yet-valid',
      `the token is not valid before ${new Date(claims.nbf * 1000).toISOString()} by the CA's clock; check the clock where it was made`,
    );
  }
  if (ctx.provisioners !== undefined) {
    const match = ctx.provisioners.find((p) => p.name === claims.iss && (claims.kid === undefined || p.kid === claims.kid));
    if (!match) {
      return new IdentityError(
        'token-provisioner',
        `the token's provisioner "${claims.iss ?? ''}" (key ${claims.kid ?? 'none'}) is unknown to this CA; make the token with one of: ${ctx.provisioners.map((p) => p.name).join(', ') || '(none listed)'}`,
      );
    }
  }
  return new IdentityError('token-used', 'the token was already used or is invalid; ask for a new one');
}
