import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import { extname, join, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, RouteGenericInterface } from 'fastify';

type Reply = FastifyReply<RouteGenericInterface, Server>;

/**
 * The admin console's static files, served at /console/ by the control plane itself (same origin as the API,
 * so the session cookie can be SameSite=Strict and the CSP can say 'self' everywhere).
 */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** One path segment of a file the build writes: no dot files, no `..`, no separators. */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

function secure(reply: Reply): void {
  void reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('strict-transport-security', 'max-age=31536000');
}

async function readOrNull(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') return null;
    throw err;
  }
}

export function registerConsoleStatic(app: FastifyInstance<Server, IncomingMessage, ServerResponse>, dir: string): void {
  const root = resolve(dir);
  const index = join(root, 'index.html');

  const serveIndex = async (reply: Reply) => {
    secure(reply);
    const html = await readOrNull(index);
    if (html === null) {
      return reply.code(404).send({ error: 'not-found', message: `the admin console was not built: ${index} is missing (npm run build)` });
    }
    // Always fetched afresh: it names the current app.js and app.css.
    return reply.header('cache-control', 'no-store').type(CONTENT_TYPES['.html'] ?? 'text/html').send(html);
  };

  app.get('/', { config: { auth: 'none' } }, (_req, reply) => reply.redirect('/console/', 302));
  app.get('/console', { config: { auth: 'none' } }, (_req, reply) => reply.redirect('/console/', 302));
  app.get('/console/', { config: { auth: 'none' } }, (_req, reply) => serveIndex(reply));

  // The API under /console/api/ never falls back to the app: a typo there is a 404, not HTML.
  app.all('/console/api/*', { config: { auth: 'none', audit: 'none' } }, (req, reply) =>
    reply.code(404).send({ error: 'not-found', message: `no route ${req.method} ${req.url}` }),
  );

  // A file the build wrote, else index.html: the app routes /console/devices/... itself.
  app.get('/console/*', { config: { auth: 'none' } }, async (req, reply) => {
    const rest = (req.params as { '*'?: string })['*'] ?? '';
    const segments = rest.split('/');
    const type = CONTENT_TYPES[extname(rest).toLowerCase()];
    if (type !== undefined && segments.every((s) => SEGMENT.test(s))) {
      const path = join(root, ...segments);
      if (path.startsWith(root + sep)) {
        const body = await readOrNull(path);
        if (body !== null) {
          secure(reply);
          // Not content-hashed names, so revalidated each time rather than cached for long.
          return reply.header('cache-control', 'no-cache').type(type).send(body);
        }
        // A missing asset is a 404, not the app's HTML under a script's name.
        if (extname(rest) !== '.html') return reply.code(404).send({ error: 'not-found', message: `no file ${rest} in the console build` });
      }
    }
    return serveIndex(reply);
  });
}
