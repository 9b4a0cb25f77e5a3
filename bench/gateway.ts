/**
 * Gateway enforcement benchmark, on loopback:
 *
 *   decide():    the authorizer's decision alone, in process (certificate already parsed and cached, as it is
 *                for every request after a certificate's first): decisions/s.
 *   vigil-authz: the built `vigil-authz` as a child process, asked over HTTP keep-alive the way nginx asks it
 *                (GET /v1/authz with X-Client-Cert), by C concurrent connections: decisions/s, p50, p99.
 *   nginx:       HTTPS with client certificates (ssl_verify_client on) to a static file, without and then with
 *                auth_request to vigil-authz: requests/s, p50, p99, and the ratio.
 *
 * The load generator is Node on the same box (2 cores here) and competes with what it measures; the ratio is
 * the figure to read. A control plane (in process, test PKI) feeds the authorizer DEVICES devices, one of
 * which makes the requests. Run after `npm run build`: `node dist/bench/gateway.js`. Environment:
 * VIGIL_BENCH_PHASE_MS (default 5000), VIGIL_BENCH_CONCURRENCY (default 16), VIGIL_BENCH_DEVICES (default 200).
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertCache, decide, parseClientCert, type DecideOptions } from '../src/authz/decide.js';
import { DeviceTable } from '../src/authz/state.js';
import { startAuthzProcess } from '../test/harness/authz.js';
import { NGINX, startNginx } from '../test/harness/nginx.js';
import { ADMIN_TOKEN, startHarness } from '../test/helpers/control-plane.js';
import { call } from '../test/helpers/https.js';
import { sampleReport } from '../test/helpers/report.js';
import { freePort } from '../test/helpers.js';

const PHASE_MS = Number(process.env.VIGIL_BENCH_PHASE_MS ?? 5000);
const CONCURRENCY = Number(process.env.VIGIL_BENCH_CONCURRENCY ?? 16);
const DEVICES = Number(process.env.VIGIL_BENCH_DEVICES ?? 200);

interface PhaseResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  statuses: Record<number, number>;
}

const pct = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** C loops, each sending its next request when the previous one has been answered, for PHASE_MS after a warm-up. */
async function closedLoop(send: () => Promise<number>): Promise<PhaseResult> {
  const run = async (ms: number, record: boolean) => {
    const latencies: number[] = [];
    const statuses: Record<number, number> = {};
    let errors = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          try {
            const status = await send();
            statuses[status] = (statuses[status] ?? 0) + 1;
          } catch {
            errors++;
          }
          if (record) latencies.push(performance.now() - t0);
        }
      }),
    );
    return { latencies, statuses, errors };
  };
  await run(Math.min(1000, PHASE_MS / 5), false);
  const t0 = performance.now();
  const r = await run(PHASE_MS, true);
  const seconds = (performance.now() - t0) / 1000;
  const sorted = r.latencies.sort((a, b) => a - b);
  return { rps: r.latencies.length / seconds, p50: pct(sorted, 0.5), p99: pct(sorted, 0.99), errors: r.errors, statuses: r.statuses };
}

const line = (name: string, r: PhaseResult): string =>
  `${name.padEnd(34)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   ${JSON.stringify(r.statuses)}${r.errors > 0 ? `  errors ${r.errors}` : ''}`;

const dir = await mkdtemp(join(tmpdir(), 'vigil-bench-gateway-'));
const h = await startHarness({ enrollBurst: 10_000, enrollPerMinute: 100_000, enrollPerSecretPerMinute: 100_000, enrollPerDevicePerMinute: 1000 });
try {
  const api = (path: string, o: Parameters<typeof call>[2] = {}) => call(h.pki.rootPem, `${h.cp.url}${path}`, o);
  const secret = ((await api('/v1/admin/secrets', { body: { uses: DEVICES + 1 }, token: ADMIN_TOKEN })).json as { secret: string }).secret;
  const enroll = async (id: string) => {
    await api('/v1/enroll', { body: { protocolVersion: 1, enrollmentSecret: secret, deviceId: id, facts: sampleReport().device } });
    const tls = await h.pki.device(id);
    const r = await api('/v1/reports', { body: { protocolVersion: 1, reportId: randomUUID(), seq: 1, dropped: 0, report: sampleReport() }, tls });
    if (r.status !== 200) throw new Error(`report for ${id}: HTTP ${r.status}`);
    return tls;
  };
  const device = await enroll('bench-gw-0');
  for (let i = 1; i < DEVICES; i += 8) await Promise.all(Array.from({ length: Math.min(8, DEVICES - i) }, (_, k) => enroll(`bench-gw-${i + k}`)));
  const leafPem = `${device.certPem.slice(0, device.certPem.indexOf('-----END CERTIFICATE-----') + 25)}\n`;
  const certHeader = encodeURIComponent(leafPem);
  process.stdout.write(`${DEVICES} devices, ${CONCURRENCY} concurrent connections, ${PHASE_MS / 1000} s per phase\n\n`);

  // ---- decide() in process ----
  {
    type Listed = { id: string; accessLevel: 'full'; state: 'active'; compliant: boolean; cert: { fingerprint_sha256: string; serial: string; not_after: string } | null; os: null; managed: boolean };
    // The device list comes a page at a time.
    const list: { devices: Listed[] } = { devices: [] };
    let cursor: string | null = null;
    do {
      const page = (await api(`/v1/admin/devices?limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`, { token: ADMIN_TOKEN })).json as { devices: Listed[]; next: string | null };
      list.devices.push(...page.devices);
      cursor = page.next;
    } while (cursor !== null);
    const table = new DeviceTable();
    table.replaceAll(
      list.devices.map((d) => ({ id: d.id, level: d.accessLevel, state: d.state, compliant: d.compliant, fingerprint: d.cert?.fingerprint_sha256 ?? null, serial: d.cert?.serial ?? null, notAfter: d.cert?.not_after ?? null, os: d.os, managed: d.managed, updatedAt: '' })),
    );
    const opts: DecideOptions = { maxLagSeconds: 15, onLag: 'deny', lastKnownGraceSeconds: 300, minimumLevel: 'full', requireOs: null, requireManaged: false };
    const cache = new CertCache();
    const n = 1_000_000;
    let allowed = 0;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const cert = cache.get(certHeader, () => parseClientCert(decodeURIComponent(certHeader)));
      if (decide({ cert, certPresent: true, verified: 'SUCCESS' }, table, { everSynced: true, lagSeconds: 0 }, opts, Date.now()).allow) allowed++;
    }
    const s = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    for (let i = 0; i < 2000; i++) parseClientCert(leafPem);
    const parseUs = ((performance.now() - t1) / 2000) * 1000;
    process.stdout.write(`decide() in process                ${(n / s).toFixed(0)} decisions/s (${allowed === n ? 'all allowed' : `${allowed} allowed`}); parsing a new certificate ${parseUs.toFixed(0)} µs\n`);
  }

  // ---- vigil-authz over HTTP ----
  const token = ((await api('/v1/admin/tokens', { body: { scope: 'gateway', name: 'bench' }, token: ADMIN_TOKEN })).json as { token: string }).token;
  await writeFile(join(dir, 'gateway.token'), token, { mode: 0o600 });
  await writeFile(join(dir, 'root.crt'), h.pki.rootPem);
  const authz = await startAuthzProcess(dir, {
    listen: `127.0.0.1:${await freePort()}`,
    controlPlaneUrl: h.cp.url,
    caRoot: join(dir, 'root.crt'),
    tokenFile: join(dir, 'gateway.token'),
    logLevel: 'warn',
  });
  try {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: CONCURRENCY });
    const ask = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(`${authz.url}/v1/authz`, { agent, headers: { 'x-client-cert': certHeader, 'x-client-verify': 'SUCCESS' } }, (res) => {
          res.resume();
          res.on('end', () => {
            resolve(res.statusCode ?? 0);
          });
        });
        req.on('error', reject);
        req.end();
      });
    const r = await closedLoop(ask);
    process.stdout.write(`${line('vigil-authz (HTTP keep-alive)', r)}\n`);
    agent.destroy();

    if (NGINX === null) {
      process.stdout.write('nginx: not installed (apt-get install nginx-light); skipped\n');
    } else {
      const www = join(dir, 'www');
      await mkdir(www, { recursive: true });
      // nginx's workers run as nobody when the bench runs as root, and serve this file.
      await chmod(dir, 0o755);
      await writeFile(join(www, 'index.html'), 'ok\n');
      const files = await h.pki.writeServerFiles(join(dir, 'tls'));
      const phase = async (withAuth: boolean): Promise<PhaseResult> => {
        const port = await freePort();
        const nginx = await startNginx({
          dir: join(dir, withAuth ? 'nginx-auth' : 'nginx-plain'),
          port,
          certFile: files.cert,
          keyFile: files.key,
          clientRootFile: files.root,
          upstream: { root: www },
          ...(withAuth ? { authz: authz.url.replace('http://', '') } : {}),
        });
        try {
          const tlsAgent = new HttpsAgent({ keepAlive: true, maxSockets: CONCURRENCY, ca: h.pki.rootPem, cert: device.certPem, key: device.keyPem });
          const get = (): Promise<number> =>
            new Promise((resolve, reject) => {
              const req = httpsRequest(`https://localhost:${port}/index.html`, { agent: tlsAgent }, (res) => {
                res.resume();
                res.on('end', () => {
                  resolve(res.statusCode ?? 0);
                });
              });
              req.on('error', reject);
              req.end();
            });
          const result = await closedLoop(get);
          if (result.statuses[200] === undefined) throw new Error(`nginx answered ${JSON.stringify(result.statuses)}, not 200:\n${nginx.log()}`);
          tlsAgent.destroy();
          return result;
        } finally {
          await nginx.stop();
        }
      };
      const plain = await phase(false);
      process.stdout.write(`${line('nginx mTLS, no auth_request', plain)}\n`);
      const authed = await phase(true);
      process.stdout.write(`${line('nginx mTLS + auth_request', authed)}\n`);
      process.stdout.write(`\nauth_request keeps ${((authed.rps / plain.rps) * 100).toFixed(0)}% of nginx's throughput (overhead ratio ${(plain.rps / authed.rps).toFixed(2)}x); p99 ${plain.p99.toFixed(2)} -> ${authed.p99.toFixed(2)} ms\n`);
    }
  } finally {
    await authz.stop();
  }
} finally {
  await h.cp.close();
  await rm(dir, { recursive: true, force: true });
}
