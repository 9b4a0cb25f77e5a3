import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundledPolicy, BUNDLED_POLICY_SOURCE } from '../../src/policy/load.js';
import { pushedPolicyFile, PUSHED_POLICY_SOURCE, readPushedPolicy, savePushedPolicy } from '../../src/reporting/pushed-policy.js';
import { loadRuntime } from '../../src/runtime.js';

describe('pushed policy persistence', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vigil-pushed-'));
    await writeFile(join(dir, 'config.json'), '{}');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const runtime = () => loadRuntime({ config: join(dir, 'config.json'), stateDir: join(dir, 'state'), logLevel: 'error' }, 'cli');

  it('round-trips, and the runtime prefers it over the bundled policy', async () => {
    expect(await readPushedPolicy(join(dir, 'state'))).toBeUndefined();
    const policy = { ...bundledPolicy(), version: 'pushed-1' };
    await savePushedPolicy(join(dir, 'state'), policy);
    expect(await readPushedPolicy(join(dir, 'state'))).toEqual({ ok: true, policy });
    const rt = await runtime();
    expect(rt.policy.version).toBe('pushed-1');
    expect(rt.policySource).toBe(PUSHED_POLICY_SOURCE);
  });

  it('a configured policy file wins over a pushed one', async () => {
    await savePushedPolicy(join(dir, 'state'), { ...bundledPolicy(), version: 'pushed-1' });
    await writeFile(join(dir, 'policy.json'), JSON.stringify({ ...bundledPolicy(), version: 'file-1' }));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ policyFile: join(dir, 'policy.json') }));
    expect((await runtime()).policy.version).toBe('file-1');
  });

  it('a corrupt or invalid pushed policy is described and the bundled one is used', async () => {
    await savePushedPolicy(join(dir, 'state'), bundledPolicy());
    await writeFile(pushedPolicyFile(join(dir, 'state')), '{"schemaVersion": 1, "na');
    const corrupt = await readPushedPolicy(join(dir, 'state'));
    expect(corrupt).toEqual({ ok: false, problem: expect.stringMatching(/not valid JSON/) as unknown });
    let rt = await runtime();
    expect(rt.policySource).toBe(BUNDLED_POLICY_SOURCE);

    await writeFile(pushedPolicyFile(join(dir, 'state')), JSON.stringify({ ...bundledPolicy(), checks: { 'no-such-check': 'critical' } }));
    const invalid = await readPushedPolicy(join(dir, 'state'));
    expect(invalid?.ok).toBe(false);
    expect(invalid && !invalid.ok ? invalid.problem : '').toMatch(/no-such-check: unknown check id/);
    rt = await runtime();
    expect(rt.policy.version).toBe(bundledPolicy().version);
  });
});
