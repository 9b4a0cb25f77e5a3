/**
 * `npm run build && node dist/bench/local-api.js`: the local API's costs (issue #16): a state read's round
 * trip (median, p99), what one state change costs the server with 50 subscribed clients (CPU, memory), and
 * what a `vigil status`-like client process costs against `node -e 0`. The server runs here, the clients in
 * a child process, so each side's CPU is its own. Figures are printed, never asserted.
 * BENCH_CALLS (default 2000) and BENCH_CHANGES (default 200) size the runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 200);
const SUBSCRIBERS = 50;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function quantile(samples: number[], q: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

/** The child: only the light client, as `vigil status` and the tray load it. Reports on stdout, one JSON line per phase. */
async function clients(address: string): Promise<void> {
  const { connectLocalApi } = await import('../src/protocol/local-api-client.js');
  const one = await connectLocalApi(address);
  for (let i = 0; i < 200; i++) await one.call('state');
  const rtt: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await one.call('state');
    rtt.push(performance.now() - t0);
  }
  one.close();
  process.stdout.write(`${JSON.stringify({ phase: 'rtt', median: quantile(rtt, 0.5), p99: quantile(rtt, 0.99), max: quantile(rtt, 1) })}\n`);

  const subs = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => connectLocalApi(address)));
  const counts = subs.map(() => 0);
  await Promise.all(
    subs.map((c, i) =>
      c.subscribe(() => {
        counts[i] = (counts[i] ?? 0) + 1;
      }),
    ),
  );
  process.stdout.write(`${JSON.stringify({ phase: 'subscribed' })}\n`);
  while (Math.min(...counts) < CHANGES) await sleep(10);
  process.stdout.write(`${JSON.stringify({ phase: 'received', min: Math.min(...counts) })}\n`);
  for (const c of subs) c.close();
}

/** CPU time of waited-for children so far, in ms (Linux: cutime + cstime of /proc/self/stat). */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

async function main(): Promise<void> {
  const { startLocalApiServer } = await import('../src/agent/local-api-server.js');
  const { silentLogger } = await import('../src/logging/logger.js');
  const { FakeBackend } = await import('../test/protocol/local-api-fixtures.js');
  const dir = await mkdtemp(join(tmpdir(), 'vigil-bench-lapi-'));
  const address = process.platform === 'win32' ? `\\\\.\\pipe\\vigil-bench-${process.pid}` : join(dir, 'agent.sock');
  const backend = new FakeBackend();
  const stateBytes = Buffer.byteLength(JSON.stringify({ type: 'event', event: 'state', state: backend.current }));
  // coalesceMs 10 instead of 100: the run measures the cost per broadcast, not the daemon's pacing.
  const server = await startLocalApiServer({ address, backend, logger: silentLogger(), limits: { coalesceMs: 10 } });
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [self, 'clients', address], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  let waiters: (() => void)[] = [];
  let buf = '';
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
      for (const w of waiters) w();
      waiters = [];
    }
  });
  const phase = async (name: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const found = lines.find((l) => l.phase === name);
      if (found) return found;
      await new Promise<void>((r) => waiters.push(r));
    }
  };

  const rtt = await phase('rtt');
  await phase('subscribed');
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const calls0 = backend.stateCalls;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < CHANGES; i++) {
    backend.change({ scanning: i % 2 === 0 });
    // Past the coalescing window, so that every change is one broadcast.
    await sleep(15);
  }
  await phase('received');
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  const rss1 = process.memoryUsage().rss;
  const broadcasts = backend.stateCalls - calls0;
  await new Promise((r) => child.once('exit', r));
  await server.close();

  // A `vigil status`-like process: load the client, connect, read the state, exit; against `node -e 0`.
  let processCost = 'n/a (Linux only)';
  if (process.platform === 'linux') {
    const backend2 = new FakeBackend();
    const server2 = await startLocalApiServer({ address, backend: backend2, logger: silentLogger() });
    const clientModule = join(self, '..', '..', 'src', 'protocol', 'local-api-client.js');
    const statusLike = `const { connectLocalApi } = await import(${JSON.stringify(clientModule)}); const c = await connectLocalApi(${JSON.stringify(address)}); await c.call('state'); c.close();`;
    // Async spawns: spawnSync would block this process, and with it the server the child talks to.
    const runOnce = (args: string[]): Promise<number> =>
      new Promise((resolve) => {
        const before = childrenCpuMs();
        const p = spawn(process.execPath, args, { stdio: 'ignore' });
        p.on('exit', () => { resolve(childrenCpuMs() - before); });
      });
    const runs = async (args: string[]): Promise<number> => {
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) ms.push(await runOnce(args));
      return quantile(ms, 0.5);
    };
    // Warms the page cache for node itself, so that the first measured run is not an outlier.
    spawnSync(process.execPath, ['-e', '0']);
    const bare = await runs(['-e', '0']);
    const status = await runs(['--input-type=module', '-e', statusLike]);
    processCost = `${status.toFixed(0)} ms CPU (median of 20) vs node -e 0: ${bare.toFixed(0)} ms -> ${(status / bare).toFixed(2)}x   target <= 2x`;
    await server2.close();
  }
  await rm(dir, { recursive: true, force: true });

  const num = (v: unknown): number => (typeof v === 'number' ? v : Number.NaN);
  process.stdout.write(
    [
      `local API (${process.platform}, node ${process.version}); state frame ${(stateBytes / 1024).toFixed(1)} KB`,
      `  state round trip over ${CALLS} calls: median ${num(rtt.median).toFixed(3)} ms, p99 ${num(rtt.p99).toFixed(3)} ms, max ${num(rtt.max).toFixed(3)} ms`,
      `  ${SUBSCRIBERS} subscribers, ${CHANGES} changes (${broadcasts} state computations) in ${(wall / 1000).toFixed(1)} s:`,
      `    server CPU per broadcast: ${((cpu.user + cpu.system) / 1000 / CHANGES).toFixed(3)} ms (user ${(cpu.user / 1000 / CHANGES).toFixed(3)}, system ${(cpu.system / 1000 / CHANGES).toFixed(3)})`,
      `    server RSS: ${(rss0 / 1048576).toFixed(1)} MB before, ${(rss1 / 1048576).toFixed(1)} MB after (${((rss1 - rss0) / 1048576).toFixed(1)} MB delta)`,
      `  status-like client process: ${processCost}`,
      '',
    ].join('\n'),
  );
}

if (process.argv[2] === 'clients') await clients(process.argv[3] ?? '');
else await main();
