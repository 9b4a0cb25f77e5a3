import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startLocalApiServer, type LocalApiLimits, type LocalApiServer } from '../../src/agent/local-api-server.js';
import { silentLogger } from '../../src/logging/logger.js';
import { AgentConnection, LocalApiError, connectLocalApi } from '../../src/protocol/local-api-client.js';
import { MAX_REQUEST_FRAME_BYTES } from '../../src/protocol/local-api-constants.js';
import { agentStateSchema, helloFrameSchema, type AgentState } from '../../src/protocol/local-api.js';
import { capturingLogger } from '../helpers/logger.js';
import { FakeBackend, RawClient, errorCode } from './local-api-fixtures.js';

let dir: string;
let path: string;
let backend: FakeBackend;
const servers: LocalApiServer[] = [];
const raws: RawClient[] = [];

beforeEach(async () => {
  // Short: a Unix socket path is limited to about 100 bytes.
  dir = await mkdtemp(join(tmpdir(), 'vla-'));
  path = join(dir, 'run', 'agent.sock');
  backend = new FakeBackend();
});

afterEach(async () => {
  for (const r of raws.splice(0)) {
    expect(r.invalid, 'every frame the server sent matches the schemas').toEqual([]);
    r.destroy();
  }
  for (const s of servers.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(limits: Partial<LocalApiLimits> = {}, logger = silentLogger()): Promise<LocalApiServer> {
  const s = await startLocalApiServer({ address: path, backend, logger, limits, agentVersion: '9.9.9' });
  servers.push(s);
  return s;
}

async function raw(): Promise<RawClient> {
  const r = await RawClient.open(path);
  raws.push(r);
  await r.hello();
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('local API server: methods', () => {
  it('greets with hello, then answers every method with a result matching its schema', async () => {
    await start();
    const r = await RawClient.open(path);
    raws.push(r);
    const hello = helloFrameSchema.parse(await r.hello());
    expect(hello).toEqual({ type: 'hello', protocol: 1, agentVersion: '9.9.9', mode: 'service', pid: process.pid });

    expect(await r.request(1, 'ping')).toEqual({ type: 'result', id: 1, result: { pong: true } });
    const st = await r.request(2, 'state', {});
    expect(st.type === 'result' && agentStateSchema.parse(st.result).posture?.results.length).toBeGreaterThan(5);
    const ctx = await r.request(3, 'device-context');
    expect(ctx).toMatchObject({ type: 'result', result: { platform: 'linux', distroFamily: 'debian' } });
    const all = await r.request(4, 'recheck');
    expect(all).toMatchObject({ type: 'result', id: 4, result: { report: { schemaVersion: expect.any(Number) as number } } });
    await r.request(5, 'recheck', { checks: ['firewall', 'disk-encryption'] });
    expect(backend.recheckCalls).toEqual([undefined, ['firewall', 'disk-encryption']]);
    const sub = await r.request(6, 'subscribe');
    expect(sub.type).toBe('result');
    backend.change({ scanning: true });
    const ev = await r.next((f) => f.type === 'event');
    expect(ev.type === 'event' && ev.state.scanning).toBe(true);
    expect(await r.request(7, 'unsubscribe')).toEqual({ type: 'result', id: 7, result: {} });
    const events = r.frames.filter((f) => f.type === 'event').length;
    backend.change({ scanning: false });
    await sleep(250);
    expect(r.frames.filter((f) => f.type === 'event').length).toBe(events);
  });

  it('answers a pipelined burst in full, and a half-closed client (printf | socat) still gets its answers', async () => {
    await start();
    const r = await raw();
    r.send(Array.from({ length: 40 }, (_, i) => `${JSON.stringify({ v: 1, id: 100 + i, method: 'ping' })}\n`).join(''));
    await r.next((f) => f.type === 'result' && f.id === 139);
    expect(r.frames.filter((f) => f.type === 'result')).toHaveLength(40);

    const h = await raw();
    h.send('{"v":1,"id":1,"method":"state"}\r\n');
    h.socket.end();
    expect((await h.next((f) => f.type === 'result')).type).toBe('result');
    await h.closed;
  });

  it('keeps the connection on a wrong version, an unknown method and bad params; says which', async () => {
    await start();
    const r = await raw();
    expect(errorCode(await r.request(1, 'state', undefined, 2))).toBe('unsupported-version');
    expect(errorCode(await r.request(2, 'shutdown'))).toBe('unknown-method');
    expect(errorCode(await r.request(3, 'recheck', { checks: ['../etc/passwd'] }))).toBe('bad-request');
    expect(errorCode(await r.request(4, 'ping', { extra: 1 }))).toBe('bad-request');
    r.send('{"v":1,"method":"ping"}\n');
    const noId = await r.next((f) => f.type === 'error' && f.id === null);
    expect(errorCode(noId)).toBe('bad-request');
    r.send('{"v":1,"id":5,"method":"ping","token":"x"}\n');
    expect(errorCode(await r.next((f) => f.type === 'error' && f.id === 5))).toBe('bad-request');
    expect(await r.request(6, 'ping')).toMatchObject({ type: 'result' });
    expect(r.isClosed).toBe(false);
  });

  it('rate-limits re-checks per connection and reports a failed scan as `failed`', async () => {
    await start({ recheckBurst: 3, recheckRefillMs: 400 });
    const r = await raw();
    for (let i = 1; i <= 3; i++) expect((await r.request(i, 'recheck')).type).toBe('result');
    const limited = await r.request(4, 'recheck');
    expect(limited).toMatchObject({ type: 'error', error: { code: 'rate-limited' } });
    expect(limited.type === 'error' && limited.error.retryAfterMs).toBeGreaterThan(0);
    expect(limited.type === 'error' && limited.error.retryAfterMs).toBeLessThanOrEqual(400);
    // Another connection has its own bucket.
    const other = await raw();
    expect((await other.request(1, 'recheck')).type).toBe('result');
    await sleep(limited.type === 'error' ? (limited.error.retryAfterMs ?? 0) + 20 : 0);
    backend.recheckError = new Error('scan timed out');
    expect(await r.request(5, 'recheck')).toMatchObject({ type: 'error', error: { code: 'failed', message: expect.stringContaining('scan timed out') as string } });
    expect(backend.recheckCalls).toHaveLength(5);
  });
});

describe('local API server: hostile and broken clients', () => {
  it('closes a client that sends garbage, and keeps serving the others', async () => {
    const { logger, lines } = capturingLogger();
    await start({}, logger);
    const good = await raw();
    for (const garbage of ['hello there\n', '[1,2,3]\n', '"string"\n', 'null\n', '{"v":1,\n']) {
      const bad = await raw();
      bad.send(garbage);
      expect(errorCode(await bad.connectionError())).toBe('bad-frame');
      await bad.closed;
    }
    expect((await good.request(1, 'ping')).type).toBe('result');
    expect(lines.filter((l) => l.startsWith('warn local API: dropped client'))).toHaveLength(5);
  });

  it('closes a client whose frame grows past the limit, without waiting for its newline', async () => {
    const s = await start();
    const good = await raw();
    const bad = await raw();
    bad.send(Buffer.alloc(MAX_REQUEST_FRAME_BYTES / 2, 0x20));
    await sleep(50);
    expect(bad.isClosed).toBe(false);
    bad.send(Buffer.alloc(MAX_REQUEST_FRAME_BYTES / 2 + 1, 0x20));
    expect(errorCode(await bad.connectionError())).toBe('frame-too-large');
    await bad.closed;
    expect((await good.request(1, 'ping')).type).toBe('result');
    expect(s.clients()).toBe(1);
  });

  it('closes a client that leaves a frame unfinished longer than frameTimeoutMs', async () => {
    await start({ frameTimeoutMs: 200 });
    const slow = await raw();
    const t0 = Date.now();
    slow.send('{"v":1,"id":1,');
    await sleep(100);
    slow.send('"meth');
    expect(errorCode(await slow.connectionError())).toBe('frame-timeout');
    await slow.closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    // Trickling whole frames is fine: the clock is per unfinished frame.
    const trickle = await raw();
    for (let i = 0; i < 4; i++) {
      trickle.send('{"v":1,"id":');
      await sleep(100);
      trickle.send(`${i},"method":"ping"}\n`);
      trickle.track(i, 'ping');
    }
    await trickle.next((f) => f.type === 'result' && f.id === 3);
    expect(trickle.frames.map((f) => f.type)).toEqual(['hello', 'result', 'result', 'result', 'result']);
    expect(trickle.isClosed).toBe(false);
  });

  it('drops a client that never reads while states are pushed, and the others keep getting them', async () => {
    const { logger, lines } = capturingLogger();
    const s = await start({ coalesceMs: 1, maxBufferedBytes: 256 * 1024 }, logger);
    const reader = await raw();
    await reader.request(1, 'subscribe');
    const deaf = await raw();
    await deaf.request(1, 'subscribe');
    deaf.socket.pause();
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 2000 && s.clients() === 2; i++) {
      backend.change({ pid: 1000 + i });
      await sleep(2);
    }
    expect(s.clients()).toBe(1);
    // Paused, it would not even see the server's FIN.
    deaf.socket.resume();
    await deaf.closed;
    expect(lines.some((l) => /dropped client #\d+: does not read/.test(l))).toBe(true);
    // Bounded by maxBufferedBytes and the kernel's socket buffers, not by how many states were pushed.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
    backend.change({ pid: 77 });
    await reader.next((f) => f.type === 'event' && f.state.pid === 77);
  });

  it('tells a client beyond maxClients that it is busy', async () => {
    await start({ maxClients: 2 });
    await raw();
    await raw();
    const err = await connectLocalApi(path, { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocalApiError);
    expect((err as LocalApiError).code).toBe('busy');
  });

  it('survives clients that reset mid-request and mid-broadcast', async () => {
    const s = await start({ coalesceMs: 1 });
    backend.stateDelayMs = 20;
    for (let i = 0; i < 20; i++) {
      const r = await raw();
      r.send('{"v":1,"id":1,"method":"subscribe"}\n{"v":1,"id":2,"method":"state"}\n');
      backend.change();
      r.socket.destroy();
    }
    await sleep(100);
    const r = await raw();
    expect((await r.request(1, 'state')).type).toBe('result');
    await until(() => s.clients() === 1);
  });
});

describe('local API server: subscriptions', () => {
  it('50 subscribed clients all receive a change, computed once and not once per client', async () => {
    const s = await start({ coalesceMs: 50 });
    const clients = await Promise.all(Array.from({ length: 50 }, () => raw()));
    await Promise.all(clients.map((c) => c.request(1, 'subscribe')));
    expect(s.clients()).toBe(50);
    const before = backend.stateCalls;
    for (let i = 0; i < 10; i++) backend.change({ scanning: true, pid: 5000 + i });
    await Promise.all(clients.map((c) => c.next((f) => f.type === 'event' && f.state.pid === 5009)));
    // A burst of changes coalesces: at most one computation per window.
    expect(backend.stateCalls - before).toBeLessThanOrEqual(2);
  });

  it('a state event never precedes the subscribe answer, and a change during it is not lost', async () => {
    await start({ coalesceMs: 1 });
    backend.stateDelayMs = 50;
    const r = await raw();
    const answered = r.request(1, 'subscribe');
    await sleep(10);
    backend.change({ pid: 31337 });
    await answered;
    const first = r.frames.findIndex((f) => f.type === 'result');
    expect(r.frames.slice(0, first).some((f) => f.type === 'event')).toBe(false);
    await r.next((f) => f.type === 'event' && f.state.pid === 31337);
  });
});

describe('local API server: the socket file', () => {
  it('creates the directory, makes the socket world-connectable, and removes it on close', async () => {
    const s = await start();
    expect((await stat(join(dir, 'run'))).mode & 0o777).toBe(0o755);
    expect((await stat(path)).mode & 0o006).toBe(0o006);
    await s.close();
    servers.length = 0;
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
  });

  it("replaces a killed daemon's stale socket file", async () => {
    await leaveStaleSocket(path);
    const err = await connectLocalApi(path).catch((e: unknown) => e);
    expect((err as LocalApiError).code).toBe('not-running');
    await start();
    expect((await (await raw()).request(1, 'ping')).type).toBe('result');
  });

  it("does not steal a live daemon's socket", async () => {
    await start();
    const r = await raw();
    await expect(startLocalApiServer({ address: path, backend: new FakeBackend(), logger: silentLogger() })).rejects.toThrow(
      `another vigil daemon is serving ${path}`,
    );
    expect((await r.request(1, 'ping')).type).toBe('result');
    expect((await (await raw()).request(1, 'ping')).type).toBe('result');
  });

  it('refuses to replace something at the path that is not a socket', async () => {
    await start();
    await servers.pop()?.close();
    await writeFile(path, 'not a socket');
    await expect(start()).rejects.toThrow(/not a socket/);
  });
});

describe('local API client', () => {
  it('connects, calls, subscribes and closes', async () => {
    await start({ coalesceMs: 1 });
    const c = await connectLocalApi(path, { timeoutMs: 2000 });
    expect(c.hello).toMatchObject({ protocol: 1, mode: 'service', agentVersion: '9.9.9' });
    expect(await c.call('ping')).toEqual({ pong: true });
    expect((await c.call('recheck', { checks: ['firewall'] })).report.results.length).toBeGreaterThan(0);
    const seen: AgentState[] = [];
    const initial = await c.subscribe((s) => seen.push(s));
    expect(initial.pid).toBe(4242);
    backend.change({ pid: 99 });
    await until(() => seen.some((s) => s.pid === 99));
    const closed = new Promise<string>((r) => c.once('close', r));
    c.close();
    expect(await closed).toMatch(/closed by the client/);
    await expect(c.call('ping')).rejects.toMatchObject({ code: 'closed' });
  });

  it('rejects with the error frame: code, message and retryAfterMs', async () => {
    await start({ recheckBurst: 1 });
    const c = await connectLocalApi(path);
    await c.call('recheck');
    const err = (await c.call('recheck').catch((e: unknown) => e)) as LocalApiError;
    expect(err).toBeInstanceOf(LocalApiError);
    expect(err.code).toBe('rate-limited');
    expect(err.retryAfterMs).toBeGreaterThan(0);
    c.close();
  });

  it('times out a call the agent does not answer, but not a re-check by default', async () => {
    await start();
    const c = await connectLocalApi(path, { callTimeoutMs: 100 });
    backend.stateDelayMs = 300;
    await expect(c.call('state')).rejects.toMatchObject({ code: 'timeout' });
    const slowScan = backend.recheck.bind(backend);
    backend.recheck = async (checks) => {
      await sleep(300);
      return slowScan(checks);
    };
    expect((await c.call('recheck')).report.results.length).toBeGreaterThan(0);
    await expect(c.call('recheck', {}, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'timeout' });
    // A late answer to a timed-out call is ignored, and the connection stays usable.
    expect(await c.call('ping')).toEqual({ pong: true });
    c.close();
  });

  it('tells "not running" from "permission denied" and from a timeout, in one line', async () => {
    const missing = (await connectLocalApi(join(dir, 'nope.sock')).catch((e: unknown) => e)) as LocalApiError;
    expect(missing.code).toBe('not-running');
    expect(missing.message).toBe(`the Vigil agent is not running (nothing listens on ${join(dir, 'nope.sock')})`);

    const mute = createServer(() => undefined);
    const mutePath = join(dir, 'mute.sock');
    await new Promise<void>((r) => mute.listen(mutePath, r));
    const timedOut = (await connectLocalApi(mutePath, { timeoutMs: 200 }).catch((e: unknown) => e)) as LocalApiError;
    expect(timedOut.code).toBe('timeout');
    expect(timedOut.message).not.toContain('\n');
    await new Promise((r) => mute.close(r));

    if (process.getuid?.() !== 0) {
      const s = await start();
      await chmod(path, 0o600 & ~0o200);
      const denied = (await connectLocalApi(path).catch((e: unknown) => e)) as LocalApiError;
      expect(denied.code).toBe('permission-denied');
      await s.close();
    }
  });

  it('the client module loads only node built-ins and the zod-free constants at runtime', async () => {
    // The graph of value imports (type-only imports are erased), followed through relative modules.
    const seen = new Set<string>();
    const builtins = new Set<string>();
    const visit = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = await readFile(file, 'utf8');
      for (const m of src.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?from\s+'([^']+)'/gms)) {
        const spec = m[1] ?? '';
        if (spec.startsWith('.')) await visit(join(file, '..', spec.replace(/\.js$/, '.ts')));
        else builtins.add(spec);
      }
    };
    await visit(join(import.meta.dirname, '..', '..', 'src', 'protocol', 'local-api-client.ts'));
    expect([...seen].map((f) => f.split('/src/')[1])).toEqual(['protocol/local-api-client.ts', 'protocol/local-api-constants.ts']);
    expect([...builtins].every((b) => b.startsWith('node:'))).toBe(true);
  });
});

describe('AgentConnection', () => {
  it('reconnects by itself when the server goes away and a new one starts on the same path', async () => {
    const s1 = await start({ coalesceMs: 1 });
    const conn = new AgentConnection(path, { backoff: { initialMs: 20, maxMs: 100 } });
    const events: string[] = [];
    conn.on('connected', () => events.push('connected'));
    conn.on('disconnected', () => events.push('disconnected'));
    const states: AgentState[] = [];
    conn.on('state', (s) => states.push(s));
    try {
      conn.start();
      await until(() => conn.connected && states.length === 1);
      await s1.close();
      servers.length = 0;
      await until(() => !conn.connected);
      await expect(conn.call('ping')).rejects.toMatchObject({ code: 'not-running' });
      await sleep(150);
      expect(events).toEqual(['connected', 'disconnected']);
      backend = new FakeBackend();
      backend.current = { ...backend.current, pid: 2 };
      await start({ coalesceMs: 1 });
      await until(() => conn.connected && states.at(-1)?.pid === 2);
      expect(await conn.call('ping')).toEqual({ pong: true });
      backend.change({ pid: 3 });
      await until(() => states.at(-1)?.pid === 3);
      expect(events).toEqual(['connected', 'disconnected', 'connected']);
    } finally {
      conn.stop();
    }
  });

  it('reconnects after the server process is SIGKILLed and restarted (stale socket left behind)', async () => {
    const child = join(import.meta.dirname, 'local-api-server-child.ts');
    const run = () =>
      new Promise<ChildProcess>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', child, path], { stdio: ['ignore', 'pipe', 'inherit'] });
        p.stdout.on('data', (c: Buffer) => {
          if (c.toString().includes('listening')) resolve(p);
        });
        p.on('exit', (code, signal) => { reject(new Error(`child exited: ${code ?? signal}`)); });
      });
    const conn = new AgentConnection(path, { backoff: { initialMs: 50, maxMs: 200 } });
    const hellos: string[] = [];
    conn.on('connected', (h) => hellos.push(h.agentVersion));
    let states = 0;
    conn.on('state', () => states++);
    let p1: ChildProcess | null = null;
    let p2: ChildProcess | null = null;
    try {
      p1 = await run();
      conn.start();
      await until(() => conn.connected && states > 2);
      const gone = new Promise((r) => p1?.once('exit', r));
      p1.kill('SIGKILL');
      await gone;
      await until(() => !conn.connected);
      expect((await stat(path)).isSocket()).toBe(true);
      p2 = await run();
      const since = states;
      await until(() => hellos.length === 2 && states > since + 2, 10_000);
      expect(hellos).toEqual([`child-${p1.pid}`, `child-${p2.pid}`]);
      expect(await conn.call('ping')).toEqual({ pong: true });
    } finally {
      conn.stop();
      p1?.kill('SIGKILL');
      p2?.kill('SIGKILL');
    }
  }, 30_000);
});

async function leaveStaleSocket(at: string): Promise<void> {
  await mkdir(join(at, '..'), { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(at)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    p.on('exit', (_code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error('did not die as planned'));
    });
  });
  expect((await stat(at)).isSocket()).toBe(true);
}
