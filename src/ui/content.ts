/**
 * The walkthrough is served from a custom scheme rather than file://, so it has an origin of its own, a
 * CSP header, and no way to read other local files (Electron security checklist, "use a custom protocol").
 */
export const APP_SCHEME = 'vigil';
export const APP_ORIGIN = `${APP_SCHEME}://app`;
export const WALKTHROUGH_URL = `${APP_ORIGIN}/index.html`;

/** Scripts and styles from our own origin only; no inline code, no network, no frames, no forms. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSETS: Readonly<Record<string, string>> = {
  '/index.html': 'text/html; charset=utf-8',
  '/app.js': 'text/javascript; charset=utf-8',
  '/styles.css': 'text/css; charset=utf-8',
};

/** Maps a request to one of the renderer's files; anything else (other hosts, `..`, queries) is refused. */
export function resolveAsset(url: string): { file: string; contentType: string } | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (`${u.protocol}//${u.host}` !== APP_ORIGIN || u.search !== '' || u.username !== '' || u.password !== '') return undefined;
  const path = u.pathname === '/' ? '/index.html' : u.pathname;
  const contentType = Object.hasOwn(ASSETS, path) ? ASSETS[path] : undefined;
  return contentType === undefined ? undefined : { file: path.slice(1), contentType };
}

/** IPC is answered only for our own page, never for a frame that navigated (or was framed) elsewhere. */
export function isTrustedSender(frameUrl: string | undefined): boolean {
  return frameUrl !== undefined && resolveAsset(frameUrl.split('#')[0] ?? '')?.file === 'index.html';
}

/** Where an IPC call came from, as Electron describes its sender. */
export interface InvokeSender {
  /** The sender is the walkthrough window's own web contents. */
  fromWalkthrough: boolean;
  /** The call came from that window's top frame, not an iframe. */
  topFrame: boolean;
  frameUrl: string | undefined;
}

/** Every invoke is refused unless it comes from our walkthrough's top frame showing our page. */
export function invokeAllowed(sender: InvokeSender): boolean {
  return sender.fromWalkthrough && sender.topFrame && isTrustedSender(sender.frameUrl);
}
