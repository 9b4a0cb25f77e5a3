import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findEdr } from '../../../src/posture/linux/edr-running.js';
import { EDR_PRODUCTS } from '../../../src/posture/linux/edr-products.js';
import { listProcesses, parseCmdline } from '../../../src/posture/linux/processes.js';
import { FactStore } from '../../../src/posture/facts.js';

const proc = (pid: number, comm: string, argv: string[] = []) => ({ pid, comm, argv });

describe('findEdr', () => {
  it('recognises products by comm, argv[0] and install path', () => {
    const o = findEdr([
      proc(1, 'systemd', ['/sbin/init']),
      proc(2, 'falcon-sensor', ['/opt/CrowdStrike/falcon-sensor']),
      // comm is cut to 15 characters: "elastic-endpoint" appears as "elastic-endpoin".
      proc(3, 'elastic-endpoin', ['/opt/Elastic/Endpoint/elastic-endpoint', 'run']),
      proc(4, 'pmd', ['/opt/traps/bin/pmd']),
    ]);
    expect(o.status).toBe('pass');
    expect(o.evidence.products).toEqual(['CrowdStrike Falcon', 'Elastic Defend', 'Palo Alto Cortex XDR']);
  });

  it('does not count freshclam or osquery, and says so', () => {
    const o = findEdr([proc(10, 'freshclam', ['/usr/bin/freshclam', '-d']), proc(11, 'osqueryd', ['/opt/osquery/bin/osqueryd'])]);
    expect(o.status).toBe('fail');
    expect(o.evidence.notCounted).toHaveLength(2);
  });

  it('is unknown with no readable processes', () => {
    expect(findEdr([]).status).toBe('unknown');
  });

  it('keeps product ids unique', () => {
    expect(new Set(EDR_PRODUCTS.map((p) => p.id)).size).toBe(EDR_PRODUCTS.length);
  });
});

describe('listProcesses', () => {
  it('parses NUL-separated cmdlines', () => {
    expect(parseCmdline('/usr/sbin/clamd\0--foreground\0')).toEqual(['/usr/sbin/clamd', '--foreground']);
    expect(parseCmdline('')).toEqual([]);
  });

  it.runIf(process.platform === 'linux')('reads this machine\'s /proc, including our own process', async () => {
    const procs = await listProcesses({
      facts: new FactStore(1000),
      readdir: (p) => Promise.resolve(readdirSync(p)),
      readFile: (p) => Promise.resolve(readFileSync(p, 'utf8')),
    });
    const self = procs.find((p) => p.pid === process.pid);
    expect(self?.comm).toBe(readFileSync('/proc/self/comm', 'utf8').trim());
    expect(self?.argv.length).toBeGreaterThan(0);
    expect(procs.length).toBeGreaterThan(1);
  });
});
