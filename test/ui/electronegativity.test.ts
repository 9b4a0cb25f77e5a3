import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

const LINT = join(ROOT, 'scripts', 'lint-electron.mjs');

async function lint(args: readonly string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [LINT, '--skip-release-check', ...args], { cwd: ROOT });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

describe('Electronegativity on electron/', () => {
  it('has no findings beyond the reviewed exceptions', async () => {
    const { code, out } = await lint([]);
    expect(out).toMatch(/0 unreviewed finding\(s\), 3 reviewed exception\(s\)/);
    expect(code).toBe(0);
  }, 90_000);

  it('fails on an unsafe app, so the pass above is not vacuous', async () => {
    const bad = join(ROOT, 'test', 'fixtures', 'ui', 'electronegativity-bad');
    const { code, out } = await lint(['--input', bad, '--exceptions', join(bad, 'exceptions.json')]);
    expect(code).toBe(1);
    expect(out).toContain('FINDING   CONTEXT_ISOLATION_JS_CHECK');
    expect(out).toContain('FINDING   SANDBOX_JS_CHECK');
  }, 90_000);
});
