import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { locateAgent } from '../../src/config/locate.js';
import type { VigilPaths } from '../../src/platform/paths.js';

/** A config tree in a temp dir: files by relative name, and paths pointing into it. */
function tree(files: Record<string, unknown>): { dir: string; paths: VigilPaths } {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-locate-'));
  for (const [name, content] of Object.entries(files)) {
    const p = join(dir, name);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return {
    dir,
    paths: {
      systemConfig: join(dir, 'system.json'),
      managedDir: join(dir, 'managed.d'),
      userConfig: join(dir, 'user.json'),
      stateDir: join(dir, 'machine-state'),
      logDir: join(dir, 'logs'),
      socket: join(dir, 'run', 'agent.sock'),
    },
  };
}

type Case = { name: string; files: (dir: string) => Record<string, unknown>; env?: (dir: string) => NodeJS.ProcessEnv; flags?: (dir: string) => { stateDir?: string; socket?: string } };

const CASES: Case[] = [
  { name: 'no config: the machine-wide socket for the machine-wide state dir', files: () => ({}) },
  { name: 'a state dir in the system file moves the socket beside it', files: (d) => ({ 'system.json': { stateDir: join(d, 's1') } }) },
  { name: 'the user file overrides the system file', files: (d) => ({ 'system.json': { agent: { socket: join(d, 'a.sock') } }, 'user.json': { agent: { socket: join(d, 'b.sock') } } }) },
  { name: 'environment over files', files: (d) => ({ 'user.json': { stateDir: join(d, 's1') } }), env: (d) => ({ VIGIL_STATE_DIR: join(d, 's2'), VIGIL_AGENT_SOCKET: join(d, 'e.sock') }) },
  { name: 'flags over environment', files: () => ({}), env: (d) => ({ VIGIL_AGENT_SOCKET: join(d, 'e.sock') }), flags: (d) => ({ socket: join(d, 'f.sock'), stateDir: join(d, 'fs') }) },
  { name: 'managed drop-ins over flags, in name order', files: (d) => ({ 'managed.d/10.json': { agent: { socket: join(d, 'm1.sock') } }, 'managed.d/20.json': { agent: { socket: join(d, 'm2.sock') } } }), flags: (d) => ({ socket: join(d, 'f.sock') }) },
  { name: 'a flag state dir without a socket', files: () => ({}), flags: (d) => ({ stateDir: join(d, 'flagged') }) },
];

describe('locating the agent without the config schema', () => {
  for (const c of CASES) {
    it(`agrees with loadConfig: ${c.name}`, async () => {
      const { dir, paths } = tree({});
      const files = c.files(dir);
      for (const [name, content] of Object.entries(files)) {
        const p = join(dir, name);
        mkdirSync(join(p, '..'), { recursive: true });
        writeFileSync(p, JSON.stringify(content));
      }
      const env = c.env?.(dir) ?? {};
      const flags = c.flags?.(dir) ?? {};
      const loaded = await loadConfig({
        paths,
        env,
        platform: 'linux',
        flags: { ...(flags.stateDir ? { stateDir: flags.stateDir } : {}), ...(flags.socket ? { agent: { socket: flags.socket } } : {}) },
      });
      const located = locateAgent({ paths, env, platform: 'linux', flags });
      expect(located).toEqual({ stateDir: loaded.stateDir, socket: loaded.socket });
    });
  }

  it('skips a file it cannot parse rather than failing a status query', () => {
    const { paths } = tree({ 'user.json': '{ not json' });
    expect(locateAgent({ paths, env: {}, platform: 'linux' })).toEqual({ stateDir: paths.stateDir, socket: paths.socket });
  });
});
