import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/config/errors.js';
import { envName, loadConfig } from '../../src/config/load.js';
import type { VigilPaths } from '../../src/platform/paths.js';

function setup(files: Record<string, unknown>): { dir: string; paths: VigilPaths } {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-config-'));
  for (const [name, content] of Object.entries(files)) {
    const p = join(dir, name);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return {
    dir,
    paths: {
      systemConfig: join(dir, 'system.json'),
      managedDir: join(dir, 'managed.d'),
      userConfig: join(dir, 'user.json'),
      stateDir: join(dir, 'state'),
      logDir: join(dir, 'logs'),
      socket: join(dir, 'agent.sock'),
    },
  };
}

describe('config layering', () => {
  it('uses defaults with no files', async () => {
    const { paths } = setup({});
    const c = await loadConfig({ paths, env: {}, platform: 'linux' });
    expect(c.config.scan).toEqual({ intervalSeconds: 300, staticFactsTtlSeconds: 3600, concurrency: 4, timeoutMs: 5000 });
    expect(c.sources.get('scan.intervalSeconds')).toBe('default');
    expect(c.stateDir).toBe(paths.stateDir);
  });

  it('applies system < user < env < flags < managed, and records each source', async () => {
    const { dir, paths } = setup({
      'system.json': { logLevel: 'warn', scan: { intervalSeconds: 600, concurrency: 2 } },
      'user.json': { scan: { intervalSeconds: 120 } },
      'managed.d/10-mdm.json': { scan: { timeoutMs: 9000 } },
    });
    const c = await loadConfig({
      paths,
      platform: 'linux',
      env: { VIGIL_SCAN_CONCURRENCY: '3', VIGIL_SCAN_TIMEOUT_MS: '100' },
      flags: { logLevel: 'debug', stateDir: join(dir, 'isolated') },
    });
    expect(c.config.logLevel).toBe('debug');
    expect(c.config.scan).toMatchObject({ intervalSeconds: 120, concurrency: 3, timeoutMs: 9000 });
    expect(c.sources.get('scan.intervalSeconds')).toBe(paths.userConfig);
    expect(c.sources.get('scan.concurrency')).toBe('environment');
    expect(c.sources.get('scan.timeoutMs')).toBe(join(paths.managedDir ?? '', '10-mdm.json'));
    expect(c.managed.has('scan.timeoutMs')).toBe(true);
    expect(c.stateDir).toBe(join(dir, 'isolated'));
    expect(c.logDir).toBe(join(dir, 'isolated', 'logs'));
  });

  it('--config replaces the user file and must exist', async () => {
    const { dir, paths } = setup({ 'user.json': { logLevel: 'warn' }, 'other.json': { logLevel: 'error' } });
    expect((await loadConfig({ paths, env: {}, configFile: join(dir, 'other.json') })).config.logLevel).toBe('error');
    await expect(loadConfig({ paths, env: {}, configFile: join(dir, 'nope.json') })).rejects.toThrow(`${join(dir, 'nope.json')}: file not found`);
  });

  it('maps env names from the schema', () => {
    expect(envName(['scan', 'intervalSeconds'])).toBe('VIGIL_SCAN_INTERVAL_SECONDS');
    expect(envName(['logLevel'])).toBe('VIGIL_LOG_LEVEL');
  });

  it('warns about an unknown VIGIL_ variable with a suggestion', async () => {
    const { paths } = setup({});
    const c = await loadConfig({ paths, env: { VIGIL_SCAN_INTERVAL_SECOND: '5' } });
    expect(c.warnings).toEqual(['ignoring unknown environment variable VIGIL_SCAN_INTERVAL_SECOND (did you mean VIGIL_SCAN_INTERVAL_SECONDS?)']);
  });
});

describe('config errors: one line naming the file, key, value and expectation', () => {
  const expectError = async (files: Record<string, unknown>, message: string, env: NodeJS.ProcessEnv = {}) => {
    const { dir, paths } = setup(files);
    await expect(loadConfig({ paths, env })).rejects.toThrow(message.replaceAll('$DIR', dir));
  };

  it('unknown key with did-you-mean', () =>
    expectError({ 'user.json': { scan: { intervalSecs: 60 } } }, '$DIR/user.json: unknown key "scan.intervalSecs" (did you mean "scan.intervalSeconds"?)'));

  it('unknown top-level key', () =>
    expectError({ 'system.json': { loglevel: 'debug' } }, '$DIR/system.json: unknown key "loglevel" (did you mean "logLevel"?)'));

  it('wrong type', () =>
    expectError({ 'user.json': { scan: { intervalSeconds: 'fast' } } }, '$DIR/user.json: scan.intervalSeconds: expected number, got "fast"'));

  it('out of range', () =>
    expectError({ 'user.json': { scan: { intervalSeconds: 1 } } }, '$DIR/user.json: scan.intervalSeconds: expected a value >= 10, got 1'));

  it('bad enum value', () =>
    expectError({ 'user.json': { logLevel: 'verbose' } }, '$DIR/user.json: logLevel: expected one of "error", "warn", "info", "debug", got "verbose"'));

  it('invalid JSON names line and column', () =>
    expectError({ 'user.json': '{\n  "logLevel": "info",\n}\n' }, '$DIR/user.json: invalid JSON at line 3 column 1'));

  it('a top level that is not an object', () => expectError({ 'user.json': '[1]' }, '$DIR/user.json: expected a JSON object at the top level, got [1]'));

  it('bad environment value names the variable', () =>
    expectError({}, 'environment VIGIL_SCAN_CONCURRENCY: scan.concurrency: expected a number, got "lots"', { VIGIL_SCAN_CONCURRENCY: 'lots' }));

  it('bad managed value names the managed file', () =>
    expectError({ 'managed.d/a.json': { scan: { concurrency: 0 } } }, '$DIR/managed.d/a.json: scan.concurrency: expected a value >= 1, got 0'));

  it('refuses __proto__ instead of letting it reach Object.prototype', () =>
    expectError({ 'managed.d/a.json': '{"__proto__": {"x": 1}}' }, '$DIR/managed.d/a.json: the keys "__proto__" and "constructor.prototype" are not allowed'));

  it('says what a pattern wants, not that it is a pattern', () =>
    expectError({ 'user.json': { reporting: { controlPlaneUrl: '' } } }, '$DIR/user.json: reporting.controlPlaneUrl: must be an https:// URL, got ""'));

  it('shows a number too large for JSON as what it became', () =>
    expectError({ 'user.json': '{"scan": {"intervalSeconds": 1e400}}' }, '$DIR/user.json: scan.intervalSeconds: expected number, got Infinity'));

  it('reads a file saved with a byte-order mark (Notepad)', async () => {
    const { paths } = setup({ 'user.json': '\uFEFF{"scan": {"intervalSeconds": 120}}' });
    expect((await loadConfig({ paths, env: {}, platform: 'linux' })).config.scan.intervalSeconds).toBe(120);
  });
});

describe('what `vigil enroll` saved in the state dir', () => {
  const FP = 'a'.repeat(64);

  it('is a layer above the system file and below the user file, environment and flags, with its own source', async () => {
    const { dir, paths } = setup({
      'system.json': { reporting: { controlPlaneUrl: 'https://system.example' }, identity: { caUrl: 'https://ca-system.example' } },
      'user.json': { identity: { caUrl: 'https://ca-user.example' } },
    });
    const { saveEnrollment } = await import('../../src/config/enrollment-file.js');
    await saveEnrollment(paths.stateDir, { controlPlaneUrl: 'https://cp.example:8443', caUrl: 'https://ca.example', fingerprint: FP });
    const c = await loadConfig({ paths, env: {}, platform: 'linux' });
    const source = `enrollment (${join(paths.stateDir, 'enrollment.json')})`;
    expect(c.config.reporting.controlPlaneUrl).toBe('https://cp.example:8443');
    expect(c.sources.get('reporting.controlPlaneUrl')).toBe(source);
    expect(c.config.identity.fingerprint).toBe(FP);
    expect(c.sources.get('identity.fingerprint')).toBe(source);
    expect(c.config.identity.caUrl).toBe('https://ca-user.example');

    // It is found in the state dir that flags choose, and lower layers than flags still win over it.
    const other = join(dir, 'other-state');
    await saveEnrollment(other, { controlPlaneUrl: 'https://elsewhere.example' });
    const moved = await loadConfig({ paths, env: { VIGIL_IDENTITY_FINGERPRINT: 'b'.repeat(64) }, platform: 'linux', flags: { stateDir: other } });
    expect(moved.config.reporting.controlPlaneUrl).toBe('https://elsewhere.example');
    expect(moved.config.identity.fingerprint).toBe('b'.repeat(64));
  });

  it('a later save keeps what the earlier one had, and never holds more than the three keys', async () => {
    const { paths } = setup({});
    const { saveEnrollment } = await import('../../src/config/enrollment-file.js');
    await saveEnrollment(paths.stateDir, { controlPlaneUrl: 'https://cp.example', caUrl: 'https://ca.example', fingerprint: FP });
    await saveEnrollment(paths.stateDir, { caUrl: 'https://ca2.example' });
    expect(JSON.parse(readFileSync(join(paths.stateDir, 'enrollment.json'), 'utf8'))).toEqual({
      reporting: { controlPlaneUrl: 'https://cp.example' },
      identity: { caUrl: 'https://ca2.example', fingerprint: FP },
    });
  });

  it('values that enrollment would accept but the loader would refuse are stopped before enrolling, naming the flag', async () => {
    const { checkEnrollmentValues } = await import('../../src/config/enrollment-file.js');
    const flags = { controlPlaneUrl: '--control-plane', caUrl: '--ca-url', fingerprint: '--fingerprint' };
    expect(() => {
      checkEnrollmentValues({ controlPlaneUrl: 'https://cp.example', caUrl: 'https://ca.example', fingerprint: FP }, flags);
    }).not.toThrow();
    expect(() => {
      checkEnrollmentValues({ caUrl: 'HTTPS://ca.example' }, flags);
    }).toThrow(/^--ca-url HTTPS:\/\/ca\.example: must be an https:\/\/ URL$/);
  });

  it.each([
    ['{"reporting": {"controlPlaneUrl": "https://cp.exa', /enrollment\.json: invalid JSON \(.*\); it is saved by vigil enroll/],
    [{ reporting: { controlPlaneUrl: 'ftp://cp.example' } }, /enrollment\.json: reporting\.controlPlaneUrl: .*, got "ftp:\/\/cp\.example"; it is saved by vigil enroll/],
    [{ stateDir: '/elsewhere' }, /enrollment\.json: unknown key "stateDir"; it is saved by vigil enroll/],
    [{ identity: { fingerprint: 'nope' } }, /enrollment\.json: identity\.fingerprint: must be the SHA-256/],
  ])('a corrupt or hostile file (%j) is a one-line error naming the file and key', async (content, message) => {
    const { paths } = setup({ 'state/enrollment.json': content });
    const err = await loadConfig({ paths, env: {}, platform: 'linux' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message.split('\n')).toHaveLength(1);
  });
});
