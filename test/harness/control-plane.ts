import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import { join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers.js';
import type { StepCa } from './stepca.js';

const execFileP = promisify(execFile);

const HERE = import.meta.dirname;
// Run from test/harness by vitest, or compiled into dist/test/harness for a bench.
const REPO = resolve(HERE, HERE.split(sep).includes('dist') ? '../../..' : '../..');
/** Built entry points; e2e tests and benches run what `npm run build` produced. */
export const DIST = join(REPO, 'dist');
export const AGENT_CLI = join(DIST, 'src/cli/main.js');
export const CONTROL_PLANE_CLI = join(DIST, 'src/control-plane/cli.js');

export interface HttpResult {
  status: number;
  body: string;
}

export function httpsCall(url: string, opts: RequestOptions & { body?: string }): Promise<HttpResult> {
  return new Promise((res, rej) => {
    const req = request(url, { ...opts, timeout: 10_000 }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        res({ status: r.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end(opts.body);
  });
}

/**
 * What a device does with the one-time token its enrollment returned: a P-256 key and a CSR for the subject and
 * URI SANs, made by openssl in `dir` as `<name>.key`/`<name>.csr`, signed by step-ca.
 */
export async function issueDeviceCert(
  ca: StepCa,
  dir: string,
  name: string,
  t: { ott: string; subject: string; sans: string[] },
): Promise<{ certPem: string; keyPem: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  await execFileP('openssl', [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key,
    '-subj', `/CN=${t.subject}`, '-addext', `subjectAltName=${t.sans.map((s) => `URI:${s}`).join(',')}`, '-out', csr,
  ]);
  const signed = await httpsCall(`${ca.url}/1.0/sign`, {
    method: 'POST',
    ca: ca.rootPem,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ csr: await readFile(csr, 'utf8'), ott: t.ott }),
  });
  if (signed.status !== 201) throw new Error(`step-ca /1.0/sign: ${String(signed.status)} ${signed.body}`);
  return { certPem: (JSON.parse(signed.body) as { certChain: string[] }).certChain.join(''), keyPem: await readFile(key, 'utf8') };
}

/** The admin token every harness control plane is started with (instances of one cluster share it). */
export const HARNESS_ADMIN_TOKEN = 'harness-admin-token-0123456789abcdef';

export interface ControlPlane {
  url: string;
  dataDir: string;
  admin(method: string, path: string, body?: unknown): Promise<HttpResult>;
  /** A fresh enrollment secret from the admin CLI. */
  secret(uses?: number): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * `vigil-control-plane serve` as a child process on loopback, with its server certificate minted from the
 * given step-ca (no --tls-cert), so agents verify it with the pinned root like in production.
 */
export async function startControlPlane(
  ca: StepCa,
  dir: string,
  /** `port`: listen there, e.g. to restart a stopped control plane where its agents expect it. */
  /** `database`: serve from this PostgreSQL URL (no data dir), as each instance of a cluster does. */
  opts: { reportIntervalSeconds?: number; port?: number; extraArgs?: string[]; database?: string } = {},
): Promise<ControlPlane> {
  const adminToken = HARNESS_ADMIN_TOKEN;
  await writeFile(join(dir, 'root.crt'), ca.rootPem);
  await writeFile(join(dir, 'provisioner.pem'), await ca.provisionerKeyPem(), { mode: 0o600 });
  await writeFile(join(dir, 'admin-token'), adminToken, { mode: 0o600 });
  const dataDir = join(dir, 'cp-data');
  const port = opts.port ?? (await freePort());
  const url = `https://127.0.0.1:${port}`;
  const storageArgs = opts.database === undefined ? ['--data-dir', dataDir] : ['--database', opts.database];
  const args = [
    CONTROL_PLANE_CLI, 'serve', '--listen', `127.0.0.1:${port}`, ...storageArgs, '--ca-url', ca.url,
    '--ca-root', join(dir, 'root.crt'), '--provisioner', ca.provisionerName, '--provisioner-key', join(dir, 'provisioner.pem'),
    '--admin-token-file', join(dir, 'admin-token'),
    ...(opts.reportIntervalSeconds === undefined ? [] : ['--report-interval-seconds', String(opts.reportIntervalSeconds)]),
    ...(opts.extraArgs ?? []),
  ];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the control plane exited during start:\n${log}`);
    const ok = await httpsCall(`${url}/health`, { ca: ca.rootPem }).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`the control plane did not become healthy:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    dataDir,
    admin: (method, path, body) =>
      httpsCall(`${url}${path}`, {
        method,
        ca: ca.rootPem,
        headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    secret: async (uses = 1) => {
      const { stdout } = await execFileP(process.execPath, [CONTROL_PLANE_CLI, 'secret', 'create', ...storageArgs, '--uses', String(uses), '--expires', '1h']);
      return stdout.trim();
    },
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
