/**
 * The local API's fixed numbers and default addresses, free of zod so that a client (`vigil status`, the
 * tray) can import them without loading the schema library: a client is a short-lived process whose cost
 * is mostly module loading. The schemas themselves are in local-api.ts.
 */

/** Bumped on an incompatible change; a request names the version it speaks. */
export const LOCAL_API_VERSION = 1;

/** A request is a few hundred bytes; anything near this is garbage or an attack. */
export const MAX_REQUEST_FRAME_BYTES = 64 * 1024;
/** A state frame carries a posture report and the policy: tens of KB; this leaves room without being endless. */
export const MAX_RESPONSE_FRAME_BYTES = 8 * 1024 * 1024;

export const LOCAL_API_METHODS = ['ping', 'state', 'subscribe', 'unsubscribe', 'recheck', 'device-context'] as const;
export type LocalApiMethod = (typeof LOCAL_API_METHODS)[number];

export const LOCAL_API_ERROR_CODES = [
  /** Not a JSON object on one line: the connection is closed after this frame. */
  'bad-frame',
  /** Longer than MAX_REQUEST_FRAME_BYTES, or a frame left unfinished too long: closed after this frame. */
  'frame-too-large',
  'frame-timeout',
  /** Valid JSON, but not a request this version understands (fields, types). */
  'bad-request',
  'unsupported-version',
  'unknown-method',
  /** Too many re-checks from this connection; `retryAfterMs` says when the next one is accepted. */
  'rate-limited',
  /** The service has as many clients as it serves at once. */
  'busy',
  /** The request was understood but could not be carried out (a scan failed). */
  'failed',
] as const;
export type LocalApiErrorCode = (typeof LOCAL_API_ERROR_CODES)[number];

/**
 * Where the service listens unless `--socket` or `agent.socket` says otherwise. The directory is created by
 * the service (systemd's RuntimeDirectory, launchd, or the daemon itself) and readable by everyone; the
 * socket is world-connectable because what it offers is what any local user may see.
 */
export function defaultSocketPath(platform: NodeJS.Platform = process.platform): string {
  switch (platform) {
    case 'win32':
      return '\\\\.\\pipe\\vigil-agent';
    case 'darwin':
      return '/var/run/vigil/agent.sock';
    default:
      return '/run/vigil/agent.sock';
  }
}
