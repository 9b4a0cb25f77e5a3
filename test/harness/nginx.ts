import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';

/** Debian's nginx (nginx-light has auth_request). Tests that need it are skipped where it is missing. */
export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? null;

export interface NginxOptions {
  /** A private directory: config, pid, logs and temp paths all go here. */
  dir: string;
  port: number;
  /** Gateway TLS certificate and key (PEM files). */
  certFile: string;
  keyFile: string;
  /** The step-ca root: the only CA client certificates may chain to. */
  clientRootFile: string;
  /** The protected application: host:port to proxy to, or a directory nginx serves itself (the benchmark). */
  upstream: string | { root: string };
  /** vigil-authz (host:port); without it, nginx proxies without asking (the benchmark's baseline). */
  authz?: string;
  fixUrl?: string;
}

/**
 * The configuration docs/gateway.md ships, with paths filled in: mTLS against the step-ca root, then
 * auth_request to vigil-authz with the verified certificate. Refusals (by nginx's TLS checks or by the
 * authorizer) are answered 403 with X-Vigil-Deny-Reason and a JSON body.
 */
export function nginxConfig(o: NginxOptions): string {
  const tmp = (name: string): string => join(o.dir, 'tmp', name);
  const fix = o.fixUrl ?? '';
  // Static files are served in the content phase, after auth_request (a `return` would answer before it).
  const app =
    typeof o.upstream === 'string'
      ? 'proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_pass http://app;'
      : `root ${o.upstream.root};`;
  const refusal = (reason: string) => `default_type application/json;
      add_header X-Vigil-Deny-Reason ${reason} always;
      add_header X-Vigil-Fix-Url "${fix}" always;
      return 403 '{"allow":false,"reason":"${reason}","fix_url":"${fix}"}\\n';`;
  return `${process.getuid?.() === 0 ? 'user nobody nogroup;\n' : ''}worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${tmp('body')};
  proxy_temp_path ${tmp('proxy')};
  fastcgi_temp_path ${tmp('fastcgi')};
  uwsgi_temp_path ${tmp('uwsgi')};
  scgi_temp_path ${tmp('scgi')};

${typeof o.upstream === 'string' ? `  upstream app { server ${o.upstream}; keepalive 32; }
` : ''}${o.authz === undefined ? '' : `  upstream vigil_authz { server ${o.authz}; keepalive 32; }\n`}
  server {
    listen 127.0.0.1:${o.port} ssl;
    ssl_certificate ${o.certFile};
    ssl_certificate_key ${o.keyFile};
    # Client certificates must chain to the step-ca root, and only to it.
    ssl_client_certificate ${o.clientRootFile};
    ssl_verify_client on;
    ssl_verify_depth 2;
    keepalive_requests 100000;

    # nginx's own refusals: 496 no certificate, 495 one that did not verify (another CA, expired).
    error_page 496 = @no_cert;
    error_page 495 = @bad_cert;
    location @no_cert {
      ${refusal('client-certificate-required')}
    }
    location @bad_cert {
      ${refusal('client-certificate-rejected')}
    }
${
  o.authz === undefined
    ? `
    location / {
      ${app}
    }`
    : `
    location / {
      auth_request /_vigil_authz;
      auth_request_set $vigil_deny_reason $upstream_http_x_vigil_deny_reason;
      auth_request_set $vigil_fix_url $upstream_http_x_vigil_fix_url;
      auth_request_set $vigil_device $upstream_http_x_vigil_device;
      error_page 403 = @vigil_denied;
      proxy_set_header X-Vigil-Device $vigil_device;
      ${app}
    }

    location = /_vigil_authz {
      internal;
      proxy_pass http://vigil_authz/v1/authz;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
      proxy_set_header X-Client-Verify $ssl_client_verify;
      proxy_set_header X-Original-URI $request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }

    location @vigil_denied {
      default_type application/json;
      add_header X-Vigil-Deny-Reason $vigil_deny_reason always;
      add_header X-Vigil-Fix-Url $vigil_fix_url always;
      return 403 '{"allow":false,"reason":"$vigil_deny_reason","fix_url":"$vigil_fix_url"}\\n';
    }`
}
  }
}
`;
}

export interface Nginx {
  url: string;
  log(): string;
  stop(): Promise<void>;
}

/** nginx in the foreground as a child process, everything under `dir`. */
export async function startNginx(o: NginxOptions): Promise<Nginx> {
  if (NGINX === null) throw new Error('nginx is not installed (apt-get install nginx-light)');
  await mkdir(join(o.dir, 'tmp'), { recursive: true });
  // Workers run as nobody when nginx starts as root; they only need to reach the temp paths.
  await chmod(o.dir, 0o755);
  const conf = join(o.dir, 'nginx.conf');
  await writeFile(conf, nginxConfig(o));
  const child: ChildProcess = spawn(NGINX, ['-e', 'stderr', '-p', o.dir, '-c', conf, '-g', `daemon off; pid ${join(o.dir, 'nginx.pid')}; error_log stderr;`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited during start:\n${log}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(o.port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => {
        resolve(false);
      });
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${o.port}:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `https://127.0.0.1:${o.port}`,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      // QUIT: graceful stop, the workers finish what they are doing.
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
