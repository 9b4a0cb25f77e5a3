import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../helpers.js';

const execFileP = promisify(execFile);

/** Debian's PostgreSQL 15 (`apt-get install postgresql`). */
export const PG_BIN = '/usr/lib/postgresql/15/bin';
/** initdb refuses root, so the cluster belongs to nobody. */
const UID = 65534;

export interface PgServer {
  port: number;
  /** A URL for the superuser on database `db`. */
  url(db?: string): string;
  /** A fresh database; returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** The postmaster's pid, read from its pid file. */
  pid(): Promise<number>;
  start(): Promise<void>;
  /** pg_ctl stop -m fast: connections are closed, committed data stays. */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** SIGKILL of the postmaster (a crash; children exit when they notice), then waits until it is gone. */
  kill(): Promise<void>;
  /** Stops the server if it runs and removes its files; safe to call twice. */
  cleanup(): Promise<void>;
}

function asNobody(cmd: string, args: string[], timeout = 60_000): Promise<{ stdout: string; stderr: string }> {
  return execFileP('setpriv', [`--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', join(PG_BIN, cmd), ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8' },
    timeout,
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A throwaway PostgreSQL 15 cluster in a temp dir, on a random loopback port, with trust authentication for
 * loopback and fsync left on (durability is what the tests check).
 */
export async function startPostgres(): Promise<PgServer> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-pg-'));
  await chmod(dir, 0o700);
  await chown(dir, UID, UID);
  const data = join(dir, 'data');
  const port = await freePort();
  await asNobody('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200`;
  let running = false;
  let removed = false;
  const url = (db = 'postgres'): string => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const pidOf = async (): Promise<number> => Number((await readFile(join(data, 'postmaster.pid'), 'utf8')).split('\n')[0]);

  const server: PgServer = {
    port,
    url,
    async createDatabase(name = `vigil_${randomBytes(6).toString('hex')}`) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${name}: expected lower-case letters, digits and _`);
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    pid: pidOf,
    async start() {
      await asNobody('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
      running = true;
    },
    async stop() {
      await asNobody('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      running = false;
    },
    async restart() {
      await asNobody('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', opts, '-m', 'fast', '-w', '-t', '60', 'restart']);
      running = true;
    },
    async kill() {
      const pid = await pidOf();
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
      // Backends notice the postmaster's death and exit; a new postmaster refuses to start while they hold
      // the shared memory, and pg_ctl start waits for that.
      running = false;
    },
    async cleanup() {
      if (removed) return;
      removed = true;
      if (running) await server.stop().catch(() => server.kill().catch(() => undefined));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await server.start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return server;
}
