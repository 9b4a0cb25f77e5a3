import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';

/**
 * One daemon per state dir, held as a listening local socket rather than a pid file: the OS closes the
 * listener when the process dies however it dies, so a leftover can never pass for a live daemon (a pid
 * file naming a recycled pid did), and a live daemon answers who it is. Node has no flock(); a socket is
 * the lock primitive it does have on every platform, with no native dependency.
 *
 * On Unix the socket lives in the state dir (0700), so only its owner can take or squat the name. A socket
 * file left by a killed daemon refuses connections, which is how it is recognised as stale and replaced.
 * On Windows a named pipe, which disappears with its last handle, is named by a hash of the state dir.
 */
export function lockAddress(stateDir: string): string {
  if (process.platform === 'win32') {
    const hash = createHash('sha256').update(resolve(stateDir).toLowerCase()).digest('hex').slice(0, 32);
    return `\\\\?\\pipe\\vigil-daemon-${hash}`;
  }
  return join(stateDir, 'daemon.sock');
}

export class DaemonRunningError extends Error {
  constructor(
    readonly pid: number | undefined,
    stateDir: string,
  ) {
    super(`another vigil daemon is running (pid ${pid ?? 'unknown'}) with state dir ${stateDir}; stop it or use --state-dir`);
    this.name = 'DaemonRunningError';
  }
}

type Probe = { running: false } | { running: true; pid: number | undefined };

/** Connects to the lock: a live daemon answers with its pid; a refused or missing socket means none runs. */
function probe(address: string, timeoutMs = 2000): Promise<Probe> {
  return new Promise((done) => {
    let text = '';
    let settled = false;
    const finish = (p: Probe): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      done(p);
    };
    const socket = createConnection(address);
    socket.setTimeout(timeoutMs, () => {
      // Accepted the connection but said nothing in time: something holds the socket, and it is alive.
      finish({ running: true, pid: undefined });
    });
    socket.on('data', (d: Buffer) => {
      text += d.toString('utf8');
    });
    socket.on('end', () => {
      const pid = Number.parseInt(text, 10);
      finish({ running: true, pid: Number.isInteger(pid) && pid > 0 ? pid : undefined });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      finish(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? { running: false } : { running: true, pid: undefined });
    });
  });
}

function listen(address: string): Promise<Server> {
  return new Promise((ok, fail) => {
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end(`${process.pid}\n`);
    });
    server.once('error', fail);
    server.listen(address, () => {
      server.off('error', fail);
      // The lock must not keep a process alive that has otherwise finished.
      server.unref();
      ok(server);
    });
  });
}

export interface DaemonLock {
  release(): Promise<void>;
}

/** The pid of the daemon holding the state dir's lock, or undefined when no daemon runs there. */
export async function lockHolder(stateDir: string): Promise<number | undefined> {
  const p = await probe(lockAddress(stateDir));
  return p.running ? p.pid : undefined;
}

/** Takes the state dir's daemon lock, or throws DaemonRunningError naming the daemon that holds it. */
export async function acquireDaemonLock(stateDir: string): Promise<DaemonLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const address = lockAddress(stateDir);
  // Two rounds: a stale socket is removed once; losing the second round means another daemon just took it.
  for (let round = 0; round < 2; round++) {
    let server: Server;
    try {
      server = await listen(address);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      const holder = await probe(address);
      if (holder.running) throw new DaemonRunningError(holder.pid, stateDir);
      // Left by a daemon that was killed: nothing listens on it any more.
      await rm(address, { force: true });
      continue;
    }
    // Two daemons that found the same stale socket could both remove it and bind; the one whose socket is
    // no longer the one at the path loses. Asking the path who answers settles it.
    const holder = await probe(address);
    if (holder.running && holder.pid !== process.pid) {
      await new Promise<void>((r) => server.close(() => { r(); }));
      throw new DaemonRunningError(holder.pid, stateDir);
    }
    return {
      release: async () => {
        await new Promise<void>((r) => server.close(() => { r(); }));
        if (process.platform !== 'win32') await rm(address, { force: true });
      },
    };
  }
  throw new DaemonRunningError(await lockHolder(stateDir), stateDir);
}
