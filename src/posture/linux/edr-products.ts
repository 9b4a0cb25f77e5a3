/**
 * Antivirus / EDR products recognised on Linux by their long-running processes. Data only, so support for
 * another product is one entry. A product matches when any process has one of `processes` as its name
 * (comm, or the basename of argv[0]) or an argv[0] under one of `pathPrefixes`.
 *
 * Decisions, so the next person does not relitigate them:
 * - Scanners that only run on demand or only fetch signatures do not protect anything: `freshclam` (ClamAV's
 *   updater) and osquery (inventory, no prevention) are listed in NOT_PROTECTION and never count.
 * - `clamd` counts: it is the resident ClamAV scanner mail and file servers use; on-access scanning needs
 *   `clamonacc`, which is also listed.
 * - Wazuh's agent counts: host intrusion detection with file-integrity monitoring, rootkit checks and active
 *   response is what the check's "lets the security team respond" asks for.
 * - Tanium's client does not count: it is endpoint management; its Threat Response module runs inside the
 *   same TaniumClient process, so the process alone cannot show that any protection is on.
 * - Elastic Agent alone does not count (it only ships data); Elastic Defend runs as `elastic-endpoint`.
 */
export interface EdrProduct {
  id: string;
  name: string;
  processes: readonly string[];
  pathPrefixes?: readonly string[];
}

export const EDR_PRODUCTS: readonly EdrProduct[] = [
  { id: 'crowdstrike-falcon', name: 'CrowdStrike Falcon', processes: ['falcon-sensor', 'falcond'], pathPrefixes: ['/opt/CrowdStrike/'] },
  {
    id: 'sentinelone',
    name: 'SentinelOne',
    processes: ['SentinelAgent', 's1-agent', 's1-orchestrator'],
    pathPrefixes: ['/opt/sentinelone/'],
  },
  { id: 'defender', name: 'Microsoft Defender for Endpoint', processes: ['wdavdaemon'], pathPrefixes: ['/opt/microsoft/mdatp/'] },
  { id: 'carbon-black', name: 'VMware Carbon Black', processes: ['cbagentd', 'cbdaemon'], pathPrefixes: ['/opt/carbonblack/'] },
  { id: 'elastic-defend', name: 'Elastic Defend', processes: ['elastic-endpoint'], pathPrefixes: ['/opt/Elastic/Endpoint/'] },
  { id: 'trend-deep-security', name: 'Trend Micro Deep Security', processes: ['ds_agent'], pathPrefixes: ['/opt/ds_agent/'] },
  {
    id: 'sophos',
    name: 'Sophos Protection for Linux',
    processes: ['sophos_watchdog', 'sophos_threat_detector', 'savd'],
    pathPrefixes: ['/opt/sophos-spl/', '/opt/sophos-av/'],
  },
  { id: 'cylance', name: 'BlackBerry Cylance', processes: ['cylancesvc'], pathPrefixes: ['/opt/cylance/'] },
  { id: 'trellix', name: 'Trellix (McAfee) Endpoint Security', processes: ['mfetpd', 'mfeespd'], pathPrefixes: ['/opt/McAfee/ens/'] },
  { id: 'cisco-secure-endpoint', name: 'Cisco Secure Endpoint', processes: ['ampdaemon'], pathPrefixes: ['/opt/cisco/amp/'] },
  { id: 'cortex-xdr', name: 'Palo Alto Cortex XDR', processes: [], pathPrefixes: ['/opt/traps/'] },
  { id: 'eset', name: 'ESET Endpoint Antivirus', processes: ['esets_daemon'], pathPrefixes: ['/opt/eset/'] },
  { id: 'wazuh', name: 'Wazuh agent', processes: ['wazuh-agentd'], pathPrefixes: ['/var/ossec/bin/wazuh-agentd'] },
  { id: 'clamav', name: 'ClamAV daemon', processes: ['clamd', 'clamonacc'] },
];

/** Seen and reported, so a reviewer knows why they did not count. */
export const NOT_PROTECTION: readonly { process: string; why: string }[] = [
  { process: 'freshclam', why: 'ClamAV signature updater; scans nothing' },
  { process: 'osqueryd', why: 'inventory and query agent; no prevention or detection engine' },
  { process: 'elastic-agent', why: 'Elastic fleet shipper; protection is elastic-endpoint' },
  { process: 'TaniumClient', why: 'endpoint management; protection cannot be seen from the process' },
];
