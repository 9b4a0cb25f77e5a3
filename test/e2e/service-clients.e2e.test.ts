import { execFile } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityConfigSchema } from '../../src/config/sections/identity.js';
import { IdentityManager } from '../../src/identity/manager.js';
import { agentStateSchema, type AgentState } from '../../src/protocol/local-api.js';
import { AgentConnection, connectLocalApi } from '../../src/protocol/local-api-client.js';
import { TrayController } from '../../src/ui/tray-controller.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { CLI, isolatedEnv, runCliProcess, startCliProcess, tempDir, waitFor, type RunResult } from '../helpers.js';

const execFileP = promisify(execFile);

/**
 * The split as it runs on a laptop: `vigil daemon` as root holds posture and the identity; the CLI run by
 * an unprivileged user (uid 65534 through setpriv) and the tray's client logic are clients over the local
 * socket. Needs root and setpriv (util-linux), as CI has.
 */
const canDropPrivileges = process.platform === 'linux' && process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');

describe.runIf(canDropPrivileges)('the service and its unprivileged clients', () => {
  let ca: StepCa;
  let stateDir: string;
  let socket: string;
  let env: NodeJS.ProcessEnv;
  let nobodyHome: string;
  let daemon: ReturnType<typeof startCliProcess>;

  const startDaemon = async (): Promise<ReturnType<typeof startCliProcess>> => {
    const d = startCliProcess(['--state-dir', stateDir, '--socket', socket, 'daemon'], env);
    await waitFor(() => /daemon started \(pid \d+\) in service mode/.test(d.output()), 30_000, 'the daemon to start');
    return d;
  };

  /** The built CLI as nobody: no HOME of its own, no groups, nothing of root's environment. */
  const asNobody = async (...args: string[]): Promise<RunResult> => {
    try {
      const { stdout, stderr } = await execFileP('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args], {
        env: isolatedEnv(nobodyHome),
        timeout: 60_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : null, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  beforeAll(async () => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true);
    ca = await startStepCa();
    stateDir = tempDir();
    const run = tempDir();
    // The socket's directory is world-traversable, like /run/vigil; the state dir stays 0700.
    chmodSync(run, 0o755);
    socket = join(run, 'vigil', 'agent.sock');
    nobodyHome = tempDir();
    chmodSync(nobodyHome, 0o777);
    env = isolatedEnv(tempDir(), { VIGIL_IDENTITY_DOMAIN: 'example.com', VIGIL_SCAN_INTERVAL_SECONDS: '3600' });
    const m = new IdentityManager({ stateDir, config: identityConfigSchema.parse({ domain: 'example.com' }) });
    const { request, tokenSans } = await m.requestedSubject();
    const enrolled = await runCliProcess(
      ['--state-dir', stateDir, 'enroll', '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint, '--token', await ca.token({ subject: request.commonName, sans: tokenSans })],
      env,
    );
    expect(enrolled.code, enrolled.stderr).toBe(0);
    daemon = await startDaemon();
  }, 120_000);

  afterAll(async () => {
    daemon.child.kill('SIGTERM');
    await ca.close();
  });

  it('shows an unprivileged user the service’s posture, identity and reporting', async () => {
    await waitFor(() => /access level: none -> /.test(daemon.output()), 60_000, 'the first scan');
    const res = await asNobody('status', '--json', '--socket', socket);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const status = JSON.parse(res.stdout) as { daemon: { running: boolean; mode: string; pid: number }; identity: { state: string; keyStorage: string; keyStorageNote?: string }; lastScan: { accessLevel: string } | null; reporting: { state: string } };
    expect(status.daemon).toMatchObject({ running: true, mode: 'service', pid: daemon.child.pid });
    // A Linux service keeps its key in a root-only file, and says so.
    expect(status.identity).toMatchObject({ state: 'valid', keyStorage: 'file' });
    expect(status.identity.keyStorageNote).toMatch(/root-only file/);
    expect(status.lastScan?.accessLevel).toMatch(/^(full|limited|blocked)$/);
    expect(status.reporting.state).toBe('off');
    const human = await asNobody('status', '--socket', socket);
    expect(human.stdout).toMatch(/\nAgent: +running in service mode, pid \d+/);
    expect(human.stdout).toMatch(/\nIdentity: +valid until /);
  }, 90_000);

  it('lets an unprivileged user trigger a re-check, run by the service', async () => {
    const res = await asNobody('check', '--json', '--socket', socket);
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as { generatedAt: string; results: unknown[] };
    expect(report.results.length).toBeGreaterThan(0);
    // The report is the service's: it is now the state every client sees.
    const status = JSON.parse((await asNobody('status', '--json', '--socket', socket)).stdout) as { lastScan: { at: string } };
    expect(status.lastScan.at).toBe(report.generatedAt);
  }, 90_000);

  it('refuses an unprivileged user every identity change, in one line that says what to run', async () => {
    for (const command of [['enroll', '--token', 'x'], ['renew', '--force'], ['rekey'], ['unenroll']]) {
      const res = await asNobody('--state-dir', stateDir, '--socket', socket, ...command);
      expect(res.code, command.join(' ')).toBe(1);
      expect(res.stderr).toMatch(new RegExp(`^vigil: ${command[0] ?? ''} changes this device's identity, which the Vigil service keeps in \\S+ \\(root only\\); run it as root: sudo vigil ${command[0] ?? ''} … \\(same arguments\\)\\n$`));
    }
  }, 90_000);

  it('gives an unprivileged user no secret: the state dir is closed and the socket carries no key or path', async () => {
    const listing = await execFileP('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'ls', stateDir]).then(
      () => 'listed',
      (err: unknown) => String((err as { stderr?: string }).stderr),
    );
    expect(listing).toMatch(/Permission denied/);
    const keyFile = readdirSync(join(stateDir, 'identity')).find((n) => n.endsWith('.key.pem'));
    expect(keyFile).toBeDefined();
    const keyPem = readFileSync(join(stateDir, 'identity', keyFile ?? ''), 'utf8');
    const keyBody = keyPem.split('\n')[1] ?? '';
    const client = await connectLocalApi(socket);
    const state: AgentState = agentStateSchema.parse(await client.call('state'));
    client.close();
    const text = JSON.stringify(state);
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).not.toContain(keyBody);
    expect(text).not.toContain(stateDir);
    // What `vigil identity` shows an unprivileged user comes from the service, without file paths.
    const shown = await asNobody('--state-dir', stateDir, '--socket', socket, 'identity', '--json');
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ state: 'valid' });
    expect(shown.stdout).not.toContain(stateDir);
  }, 60_000);

  it('serves 50 clients at once', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => connectLocalApi(socket)));
    const states = await Promise.all(clients.map((c) => c.call('state')));
    for (const c of clients) c.close();
    expect(new Set(states.map((s) => s.pid))).toEqual(new Set([daemon.child.pid]));
  }, 60_000);

  it('the tray’s client says the agent is not running after a SIGKILL, and reconnects by itself when it is back', async () => {
    const link = new AgentConnection(socket);
    const tray = new TrayController({
      link,
      remediation: () => undefined,
      platform: 'linux',
      allowQuit: true,
      notifications: { enabled: true, cooldownMs: 0 },
      startHint: 'sudo systemctl start vigil.service',
      display: () => ({ now: new Date(), locale: 'en-GB', timeZone: 'UTC' }),
    });
    link.start();
    try {
      await waitFor(() => tray.agentState?.posture, 20_000, 'the tray to get the posture');
      expect(tray.model().icon).toMatch(/^(compliant|limited|blocked)$/);
      // "Check again" in the walkthrough goes to the service and comes back with its result.
      const walk = tray.openWalkthrough();
      expect(walk.waiting).toBe(false);

      daemon.child.kill('SIGKILL');
      await new Promise((r) => daemon.child.once('close', r));
      const down = await waitFor(() => (tray.model().menu[0]?.type === 'item' && tray.model().icon === 'offline' ? tray.model() : undefined), 10_000, 'the tray to notice');
      expect(down.menu[0]).toMatchObject({ label: 'Vigil agent is not running' });
      expect(down.menu[1]).toMatchObject({ label: 'Start it: sudo systemctl start vigil.service' });
      expect(down.tooltip).toBe('Vigil: Agent not running');
      // The killed daemon left its socket file behind; the next one replaces it.
      expect(existsSync(socket)).toBe(true);

      daemon = await startDaemon();
      await waitFor(() => (tray.model().icon !== 'offline' && tray.agentState?.pid === daemon.child.pid ? true : undefined), 20_000, 'the tray to reconnect');
      expect(await tray.checkNow()).toBeUndefined();
    } finally {
      link.stop();
    }
  }, 120_000);
});
