import { describe, expect, it } from 'vitest';
import { agentSocket, defaultPaths, isPrivileged, machinePaths, stateDirSocket } from '../../src/platform/paths.js';

describe('machine-wide and per-user locations', () => {
  it('names the service locations each OS uses', () => {
    expect(machinePaths('linux')).toMatchObject({ stateDir: '/var/lib/vigil', logDir: '/var/log/vigil', socket: '/run/vigil/agent.sock' });
    expect(machinePaths('darwin')).toMatchObject({ stateDir: '/Library/Application Support/Vigil/state', logDir: '/Library/Logs/Vigil', socket: '/var/run/vigil/agent.sock' });
    const win = machinePaths('win32', { ProgramData: 'C:\\ProgramData' });
    expect(win.socket).toBe('\\\\.\\pipe\\vigil-agent');
    expect(win.stateDir).toContain('Vigil');
  });

  it('uses the machine-wide locations wherever a service is installed, for every user', () => {
    const p = defaultPaths('linux', { XDG_STATE_HOME: '' }, '/home/u', (dir) => dir === '/var/lib/vigil', false);
    expect(p.stateDir).toBe('/var/lib/vigil');
    expect(p.socket).toBe('/run/vigil/agent.sock');
  });

  it('keeps per-user locations for local-only use where no service is installed', () => {
    const p = defaultPaths('linux', {}, '/home/u', () => false, false);
    expect(p.stateDir).toBe('/home/u/.local/state/vigil');
    expect(p.socket).toBe('/home/u/.local/state/vigil/agent.sock');
  });

  it('lets an explicit XDG_STATE_HOME isolate an agent, even as root', () => {
    const p = defaultPaths('linux', { XDG_STATE_HOME: '/tmp/x' }, '/home/u', () => true, true);
    expect(p.stateDir).toBe('/tmp/x/vigil');
  });

  it('detects LocalSystem on Windows by its profile', () => {
    expect(isPrivileged('win32', { USERPROFILE: 'C:\\Windows\\system32\\config\\systemprofile' })).toBe(true);
    expect(isPrivileged('win32', { USERPROFILE: 'C:\\Users\\ana' })).toBe(false);
  });

  it('gives an agent with another state dir a socket of its own', () => {
    const m = machinePaths('linux');
    expect(agentSocket(m, '/var/lib/vigil', undefined, 'linux')).toBe('/run/vigil/agent.sock');
    expect(agentSocket(m, '/tmp/t1', undefined, 'linux')).toBe('/tmp/t1/agent.sock');
    expect(agentSocket(m, '/tmp/t1', '/tmp/x.sock', 'linux')).toBe('/tmp/x.sock');
    expect(stateDirSocket('C:\\state', 'win32')).toMatch(/^\\\\\.\\pipe\\vigil-agent-[0-9a-f]{32}$/);
  });
});
