import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { EDR_PRODUCTS, NOT_PROTECTION, type EdrProduct } from './edr-products.js';
import { listProcesses, type ProcessInfo } from './processes.js';

/** comm is cut to 15 characters (TASK_COMM_LEN - 1), so a longer name is compared by its first 15. */
const COMM_LEN = 15;

function processNames(p: ProcessInfo): string[] {
  const argv0 = p.argv[0] ?? '';
  const base = argv0.slice(argv0.lastIndexOf('/') + 1);
  return base ? [p.comm, base] : [p.comm];
}

function nameMatches(p: ProcessInfo, name: string): boolean {
  return p.comm === name.slice(0, COMM_LEN) || processNames(p).includes(name);
}

function productMatches(product: EdrProduct, p: ProcessInfo): boolean {
  if (product.processes.some((n) => nameMatches(p, n))) return true;
  const argv0 = p.argv[0] ?? '';
  return (product.pathPrefixes ?? []).some((prefix) => argv0.startsWith(prefix));
}

export function findEdr(procs: readonly ProcessInfo[], products: readonly EdrProduct[] = EDR_PRODUCTS): Observation {
  const found = products.filter((prod) => procs.some((p) => productMatches(prod, p)));
  const ignored = NOT_PROTECTION.filter((n) => procs.some((p) => nameMatches(p, n.process))).map((n) => `${n.process}: ${n.why}`);
  const evidence = { products: found.map((f) => f.name), notCounted: ignored, processesScanned: procs.length };
  if (procs.length === 0) return { status: 'unknown', evidence, reason: 'no processes were readable in /proc' };
  return found.length > 0
    ? { status: 'pass', evidence, reason: `running: ${found.map((f) => f.name).join(', ')}` }
    : { status: 'fail', evidence, reason: 'no known antivirus or EDR process is running' };
}

export const edrRunning: PlatformCheck = {
  collect: async (ctx) => findEdr(await listProcesses(ctx)),
  remediation: {
    guides: [
      {
        label: 'Company-managed device',
        steps: [
          'Ask IT to install or re-enable the company endpoint protection (for example CrowdStrike, SentinelOne or Microsoft Defender); it needs an administrator.',
          'If it was installed before, restart the device: the protection service may have stopped.',
          'Choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
    ],
  },
};
