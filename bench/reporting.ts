/**
 * `npm run bench:reporting`: the agent daemon's CPU and memory while it reports every 10 s (the issue's
 * benchmark). Real step-ca (the test harness), the real control plane directing a 10 s interval, and a
 * real `vigil daemon` enrolled with an enrollment secret, all from dist/ on loopback.
 * BENCH_REPORT_SECONDS sets the window (default 600, the 10 minutes). Figures are printed, never
 * asserted. Linux only (reads /proc).
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AGENT_CLI, startControlPlane } from '../test/harness/control-plane.js';
import { startStepCa } from '../test/harness/stepca.js';

const execFileP = promisify(execFile);
const WINDOW_SECONDS = Number(process.env.BENCH_REPORT_SECONDS ?? 600);
const INTERVAL_SECONDS = 10;
// USER_HZ, the unit of utime/stime in /proc/<pid>/stat, is 100 on every Linux architecture Node supports.
const TICKS_PER_SECOND = 100;

interface ProcSample {
  rssKb: number;
  hwmKb: number;
  cpuTicks: number;
}

function procSample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  // Fields 14 and 15 (utime, stime) follow the parenthesised command name.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

if (process.platform !== 'linux') {
  process.stdout.write('bench:reporting reads /proc; skipped on this platform\n');
  process.exit(0);
}

const ca = await startStepCa({ claims: { defaultTLSCertDuration: '24h' } });
const dir = await mkdtemp(join(tmpdir(), 'vigil-bench-reporting-'));
const cp = await startControlPlane(ca, dir, { reportIntervalSeconds: INTERVAL_SECONDS });
let daemon: ReturnType<typeof spawn> | undefined;
try {
  const env = { PATH: process.env.PATH, HOME: join(dir, 'home'), XDG_CONFIG_HOME: join(dir, 'home', '.config') };
  await writeFile(
    join(dir, 'agent.json'),
    JSON.stringify({ identity: { keyStorage: 'file' }, reporting: { controlPlaneUrl: cp.url, intervalSeconds: INTERVAL_SECONDS } }),
  );
  const args = ['--config', join(dir, 'agent.json'), '--state-dir', join(dir, 'agent-state')];
  await execFileP(process.execPath, [AGENT_CLI, ...args, 'enroll', '--control-plane', cp.url, '--enrollment-secret', await cp.secret(), '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint], { env });
  const { stdout } = await execFileP(process.execPath, [AGENT_CLI, ...args, 'identity', '--json'], { env });
  const deviceId = (JSON.parse(stdout) as { deviceId: string }).deviceId;
  const reports = async (): Promise<number> => {
    // The admin API pages at 1000; a 10 s interval stays below that for windows up to 2.7 hours.
    const r = await cp.admin('GET', `/v1/admin/devices/${deviceId}/reports?limit=1000`);
    if (r.status !== 200) throw new Error(`admin API: HTTP ${r.status} ${r.body}`);
    return (JSON.parse(r.body) as { reports: unknown[] }).reports.length;
  };

  const child = spawn(process.execPath, [AGENT_CLI, ...args, 'daemon'], { env, stdio: 'ignore' });
  daemon = child;
  const pid = child.pid;
  if (pid === undefined) throw new Error('daemon did not start');
  const deadline = Date.now() + 120_000;
  while ((await reports()) === 0) {
    if (Date.now() > deadline) throw new Error('the daemon never delivered its first report');
    await sleep(250);
  }
  // Let the first report's burst (TLS handshakes, directive stream) settle before the window opens.
  await sleep(2000);
  const before = await reports();
  const start = procSample(pid);
  let peakRssKb = start.rssKb;
  const windowEnd = Date.now() + WINDOW_SECONDS * 1000;
  while (Date.now() < windowEnd) {
    await sleep(Math.min(1000, windowEnd - Date.now()));
    peakRssKb = Math.max(peakRssKb, procSample(pid).rssKb);
  }
  const end = procSample(pid);
  const delivered = (await reports()) - before;
  const cpuSeconds = (end.cpuTicks - start.cpuTicks) / TICKS_PER_SECOND;
  process.stdout.write(
    [
      `Agent daemon reporting every ${INTERVAL_SECONDS} s (server-directed) for ${WINDOW_SECONDS} s, mTLS to a local control plane:`,
      `  reports delivered:      ${delivered} (expected about ${Math.round(WINDOW_SECONDS / INTERVAL_SECONDS)})`,
      `  agent CPU (user+sys):   ${cpuSeconds.toFixed(2)} s over ${WINDOW_SECONDS} s = ${((cpuSeconds / WINDOW_SECONDS) * 100).toFixed(2)} % of one core; ${delivered > 0 ? ((cpuSeconds * 1000) / delivered).toFixed(0) : '-'} ms per report (scan included)`,
      `  agent RSS:              start ${mb(start.rssKb)}, end ${mb(end.rssKb)}, peak in window ${mb(peakRssKb)} (1 s samples)`,
      `  agent VmHWM:            ${mb(end.hwmKb)} (lifetime peak, startup and first scan included)`,
      '',
    ].join('\n'),
  );
} finally {
  const d = daemon;
  if (d && d.exitCode === null) {
    const exited = new Promise((r) => d.once('exit', r));
    d.kill('SIGTERM');
    await exited;
  }
  await cp.stop();
  await ca.close();
  await rm(dir, { recursive: true, force: true });
}
