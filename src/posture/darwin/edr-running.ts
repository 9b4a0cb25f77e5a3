import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { findEdr } from '../edr-processes.js';
import { readDarwinPosture } from './probe.js';

/** Process names (ps -c) of endpoint protection agents on macOS, mapped to the product. */
export const DARWIN_EDR_PROCESSES: Readonly<Record<string, string>> = {
  falcond: 'CrowdStrike Falcon',
  'com.crowdstrike.falcon.Agent': 'CrowdStrike Falcon',
  sentineld: 'SentinelOne',
  SentinelAgent: 'SentinelOne',
  wdavdaemon: 'Microsoft Defender for Endpoint',
  JamfProtect: 'Jamf Protect',
  SophosScanD: 'Sophos',
  SophosAntiVirus: 'Sophos',
  esets_daemon: 'ESET',
  CbOsxSensorService: 'VMware Carbon Black',
  'elastic-endpoint': 'Elastic Defend',
  'cortex-xdr': 'Palo Alto Cortex XDR',
  'com.paloaltonetworks.cortex.pmd': 'Palo Alto Cortex XDR',
};

/**
 * XProtect ships with every Mac and cannot respond to incidents, so it alone does not pass: it is reported
 * as evidence here and judged by the xprotect check.
 */
export function judgeDarwinEdr(processes: string | null): Observation {
  if (processes === null) return { status: 'unknown', evidence: {}, reason: 'could not list running processes' };
  const products = findEdr(processes, DARWIN_EDR_PROCESSES);
  return products.length > 0
    ? { status: 'pass', evidence: { products }, reason: `running: ${products.join(', ')}` }
    : { status: 'fail', evidence: { products }, reason: 'no known endpoint protection agent is running' };
}

export const edrRunning: PlatformCheck = {
  collect: async (ctx) => judgeDarwinEdr((await readDarwinPosture(ctx)).processes),
  remediation: {
    guides: [
      {
        label: 'macOS',
        steps: [
          'Open Self Service (or your company app portal) and install the endpoint protection app IT provides.',
          'When macOS asks, allow its system extension and Full Disk Access in System Settings > Privacy & Security.',
          'If it is already installed, restart the Mac so it starts again, then choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
    ],
  },
};
