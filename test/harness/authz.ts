import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DIST } from './control-plane.js';

export const AUTHZ_CLI = join(DIST, 'src/authz/cli.js');

export interface AuthzProcess {
  url: string;
  log(): string;
  stop(): Promise<void>;
}

/** The built `vigil-authz` as a child process, configured by a JSON file written into `dir`. */
export async function startAuthzProcess(dir: string, config: Record<string, unknown> & { listen: string }): Promise<AuthzProcess> {
  const file = join(dir, 'authz.json');
  await writeFile(file, JSON.stringify(config, null, 2));
  const child: ChildProcess = spawn(process.execPath, [AUTHZ_CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const url = `http://${config.listen}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vigil-authz exited during start:\n${log}`);
    // Healthy once it has read the device list: until then it refuses everything.
    const ok = await fetch(`${url}/healthz`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`vigil-authz did not become healthy:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
