import { readFileSync } from 'node:fs';
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
    const procs = await listProcesses({ facts: new FactStore(1000) });
    const self = procs.find((p) => p.pid === process.pid);
    expect(self?.comm).toBe(readFileSync('/proc/self/comm', 'utf8').trim());
    expect(self?.argv.length).toBeGreaterThan(0);
    expect(procs.length).toBeGreaterThan(1);
  });
});

describe('listProcesses with a recorded table', () => {
  // A process table as /proc shows it; pid 3 exits between readdir and the read of its files.
  const table: Record<string, string> = {
    '/proc/1/comm': 'systemd\n',
    '/proc/1/cmdline': '/sbin/init\0splash\0',
    '/proc/2/comm': 'kthreadd\n',
    '/proc/2/cmdline': '',
    '/proc/40/comm': 'falcon-sensor\n',
    '/proc/40/cmdline': '/opt/CrowdStrike/falcon-sensor\0',
  };
  const reader = (entries: string[], files: Record<string, string>) => ({
    readdir: () => entries,
    readFile: (p: string) => {
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return text;
    },
  });

  it('skips processes that exit mid-scan and entries that are not pids', async () => {
    const procs = await listProcesses({ facts: new FactStore(1000) }, reader(['1', '2', '3', '40', 'self', 'meminfo'], table));
    expect(procs).toEqual([
      { pid: 1, comm: 'systemd', argv: ['/sbin/init', 'splash'] },
      { pid: 2, comm: 'kthreadd', argv: [] },
      { pid: 40, comm: 'falcon-sensor', argv: ['/opt/CrowdStrike/falcon-sensor'] },
    ]);
    expect(findEdr(procs).status).toBe('pass');
  });

  it('reads every process of a large table, once per scan', async () => {
    const files: Record<string, string> = {};
    const pids = Array.from({ length: 1000 }, (_, i) => String(i + 1));
    for (const pid of pids) Object.assign(files, { [`/proc/${pid}/comm`]: 'bash\n', [`/proc/${pid}/cmdline`]: '-bash\0' });
    let reads = 0;
    const counting = reader(pids, files);
    const proc = { readdir: counting.readdir, readFile: (p: string) => {
        reads++;
        return counting.readFile(p);
      },
    };
    const facts = new FactStore(1000);
    expect(await listProcesses({ facts }, proc)).toHaveLength(1000);
    await listProcesses({ facts }, proc);
    expect(reads).toBe(2000);
  });
});

