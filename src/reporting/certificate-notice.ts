import { errorBodySchema, PROTOCOL_VERSION, type IdentityRevoked } from '../protocol/wire.js';
import { httpsRequest, type TlsMaterial } from './https-client.js';

/**
 * Tells the control plane that the certificate on this connection no longer speaks for the device
 * (POST /v1/identity/revoked): `vigil unenroll` gave it up, or the CA refused to renew it. Returns a
 * one-line problem when the server could not be told; a 403 means it already refuses the device, which is
 * what was wanted.
 */
export async function tellCertificateGone(
  controlPlaneUrl: string,
  tls: TlsMaterial,
  serialHex: string,
  reason: IdentityRevoked['reason'],
  timeoutMs: number,
): Promise<string | undefined> {
  const url = `${controlPlaneUrl.replace(/\/+$/, '')}/v1/identity/revoked`;
  const body: IdentityRevoked = { protocolVersion: PROTOCOL_VERSION, serial: serialHex.toLowerCase(), reason };
  try {
    const res = await httpsRequest({
      url,
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      tls,
      timeoutMs,
      maxBytes: 64 * 1024,
    });
    if (res.status === 204 || res.status === 403) return undefined;
    let detail = '';
    try {
      const e = errorBodySchema.safeParse(JSON.parse(res.body.toString('utf8')));
      if (e.success) detail = `: ${e.data.message}`;
    } catch {
      // Not JSON: the status says enough.
    }
    return `the control plane at ${controlPlaneUrl} did not take note (HTTP ${res.status}${detail})`;
  } catch (err) {
    return `cannot reach the control plane at ${controlPlaneUrl} (${err instanceof Error ? err.message : String(err)})`;
  }
}
