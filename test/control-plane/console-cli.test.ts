import { spawn } from 'node:child_process';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startHarness, type Harness } from '../helpers/control-plane.js';
import { call } from '../helpers/https.js';

const CLI = join(import.meta.dirname, '../../src/control-plane/cli.ts');

/** Runs the CLI as a real process, with `input` piped to its stdin (so stdin is not a TTY). */
function cli(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

let h: Harness;
const signIn = (name: string, password: string) => call(h.pki.rootPem, `${h.cp.url}/console/api/session`, { body: { name, password } });

beforeAll(async () => {
  h = await startHarness({ console: { idleTimeoutMinutes: 30, absoluteLifetimeHours: 12, signinFailuresPerMinutePerName: 100, signinFailuresPerMinutePerIp: 1000 } });
});
afterAll(async () => {
  await h.cp.close();
});

describe('vigil-control-plane admin (real processes, against a running server\'s database)', () => {
  it('add reads the password from stdin; list; passwd ends sessions; remove; every change audited as the OS user', async () => {
    const dd = ['--data-dir', h.config.dataDir];
    const added = await cli(['admin', 'add', ...dd, '--name', 'alice'], 'a long enough password\n');
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toBe('');
    const s = await signIn('alice', 'a long enough password');
    expect(s.status).toBe(200);
    const cookie = String(s.headers['set-cookie']?.[0]).split(';')[0] ?? '';

    const gen = await cli(['admin', 'add', ...dd, '--name', 'bob', '--generate']);
    expect(gen.code, gen.stderr).toBe(0);
    const generated = gen.stdout.trim();
    expect(generated).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(gen.stderr).toContain('not shown again');
    expect((await signIn('bob', generated)).status).toBe(200);

    const list = await cli(['admin', 'list', ...dd, '--json']);
    const admins = (JSON.parse(list.stdout) as { admins: { name: string }[] }).admins;
    expect(admins.map((a) => a.name)).toEqual(['alice', 'bob']);
    expect(list.stdout).not.toContain('scrypt');

    const dup = await cli(['admin', 'add', ...dd, '--name', 'alice'], 'another long password\n');
    expect([dup.code, dup.stderr.trim()]).toEqual([1, 'vigil-control-plane: --name alice: an admin account with this name exists (use admin passwd to change its password)']);

    const pw = await cli(['admin', 'passwd', ...dd, '--name', 'alice'], 'the new password here\n');
    expect(pw.code, pw.stderr).toBe(0);
    expect((await call(h.pki.rootPem, `${h.cp.url}/console/api/session`, { headers: { cookie } })).status).toBe(401);
    expect((await signIn('alice', 'a long enough password')).status).toBe(401);
    expect((await signIn('alice', 'the new password here')).status).toBe(200);

    const rm = await cli(['admin', 'remove', ...dd, '--name', 'bob']);
    expect(rm.code, rm.stderr).toBe(0);
    expect((await signIn('bob', generated)).status).toBe(401);

    const audit = await call(h.pki.rootPem, `${h.cp.url}/v1/admin/audit?limit=500`, { token: ADMIN_TOKEN });
    const cliEntries = (audit.json as { entries: { actor: string; action: string; target: string }[] }).entries.filter((e) => e.actor.startsWith('cli:'));
    expect(cliEntries.map((e) => [e.actor, e.action, e.target])).toEqual(
      [
        ['admin.add', 'alice'],
        ['admin.add', 'bob'],
        ['admin.passwd', 'alice'],
        ['admin.remove', 'bob'],
      ]
        .reverse()
        .map(([action, target]) => [`cli:${userInfo().username}`, action, target]),
    );
  });

  it('refuses a short password, a bad name, an empty stdin, and any password on the command line', async () => {
    const dd = ['--data-dir', h.config.dataDir];
    const short = await cli(['admin', 'add', ...dd, '--name', 'carol'], 'short\n');
    expect([short.code, short.stderr.trim()]).toEqual([1, 'vigil-control-plane: password: expected at least 12 characters']);
    const bad = await cli(['admin', 'add', ...dd, '--name', 'Carol Smith'], 'a long enough password\n');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--name Carol Smith: a lower-case name');
    const empty = await cli(['admin', 'add', ...dd, '--name', 'carol']);
    expect([empty.code, empty.stderr.trim()]).toEqual([1, 'vigil-control-plane: no password on stdin (pipe one in, or use --generate)']);
    const argv = await cli(['admin', 'add', ...dd, '--name', 'carol', '--password', 'a long enough password']);
    expect(argv.code).toBe(1);
    expect(argv.stderr).toContain("unknown option '--password'");
    const missing = await cli(['admin', 'remove', ...dd, '--name', 'nobody']);
    expect([missing.code, missing.stderr.trim()]).toEqual([1, 'vigil-control-plane: --name nobody: no such admin account']);
  });
});
