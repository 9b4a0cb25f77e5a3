import type { CheckDefinition } from './types.js';

/**
 * The check catalog: data only. Each platform supplies one collector per check it lists
 * (src/posture/<platform>/index.ts) and remediation content (src/posture/remediation/).
 */
export const CHECKS = [
  {
    id: 'os-version',
    title: 'Operating system is supported',
    category: 'os',
    severity: 'critical',
    platforms: ['linux', 'darwin', 'win32'],
    why: 'Releases past their support window stop getting security fixes.',
  },
  {
    id: 'os-patched',
    title: 'Security updates installed',
    category: 'updates',
    severity: 'critical',
    platforms: ['linux', 'darwin', 'win32'],
    why: 'Most attacks use flaws that already have a published fix.',
    // apt and dnf simulations take seconds on a busy machine; the result is cached until packages change.
    timeoutMs: 60_000,
  },
  {
    id: 'disk-encryption',
    title: 'Disk encryption on',
    category: 'encryption',
    severity: 'critical',
    platforms: ['linux', 'darwin', 'win32'],
    why: 'A lost or stolen laptop must not hand over its data.',
  },
  {
    id: 'not-rooted',
    title: 'System integrity intact (not rooted)',
    category: 'integrity',
    severity: 'critical',
    platforms: ['linux', 'darwin', 'win32'],
    why: 'A device whose core protections are switched off cannot vouch for anything it reports.',
  },
  {
    id: 'edr-running',
    title: 'Antivirus or EDR running',
    category: 'malware',
    severity: 'recommended',
    platforms: ['linux', 'darwin', 'win32'],
    why: 'Endpoint protection catches malware and lets the security team respond to incidents.',
  },
  {
    id: 'firewall',
    title: 'Firewall on',
    category: 'network',
    severity: 'recommended',
    platforms: ['linux', 'darwin', 'win32'],
    why: 'A firewall stops other machines on the same network reaching services you did not mean to share.',
  },
  {
    id: 'screen-lock',
    title: 'Screen locks when idle',
    category: 'access',
    severity: 'recommended',
    platforms: ['linux', 'darwin', 'win32'],
    why: 'An unlocked, unattended laptop gives anyone nearby your access.',
  },
  {
    id: 'auto-updates',
    title: 'Automatic updates on',
    category: 'updates',
    severity: 'recommended',
    platforms: ['linux', 'darwin', 'win32'],
    why: 'Automatic updates close security holes without anyone having to remember.',
  },
  {
    id: 'secure-boot',
    title: 'Secure Boot on',
    category: 'integrity',
    severity: 'recommended',
    platforms: ['linux', 'win32'],
    why: 'Secure Boot stops tampered boot loaders and kernels from starting.',
  },
  {
    id: 'ssh-server',
    title: 'No SSH server open to the network',
    category: 'network',
    severity: 'recommended',
    platforms: ['linux', 'darwin'],
    why: 'A listening SSH server lets anyone on the network try to log in.',
  },
  {
    id: 'root-empty-password',
    title: 'Root account has no empty password',
    category: 'access',
    severity: 'critical',
    platforms: ['linux'],
    why: 'An empty root password gives full control to anyone at the keyboard.',
  },
  {
    id: 'guest-account',
    title: 'Guest account off',
    category: 'access',
    severity: 'recommended',
    platforms: ['linux', 'darwin', 'win32'],
    why: 'A guest account lets people without credentials use the device.',
  },
  // Severities of the checks below: each is a defence in depth or a management signal rather than a
  // protection whose absence exposes data directly, so they default to recommended (limits, never blocks).
  {
    id: 'gatekeeper',
    title: 'Gatekeeper on',
    category: 'malware',
    severity: 'recommended',
    platforms: ['darwin'],
    why: 'Gatekeeper stops apps from unknown or tampered sources from opening.',
  },
  {
    id: 'mdm-enrolled',
    title: 'Managed by your organisation',
    category: 'identity',
    severity: 'recommended',
    platforms: ['darwin', 'win32'],
    why: 'A managed device can receive security settings and be wiped if it is lost.',
  },
  {
    id: 'xprotect',
    title: 'Built-in malware protection up to date',
    category: 'malware',
    severity: 'recommended',
    platforms: ['darwin'],
    why: "XProtect blocks known malware only if Apple's latest definitions are installed.",
  },
  {
    id: 'uac',
    title: 'User Account Control on',
    category: 'integrity',
    severity: 'recommended',
    platforms: ['win32'],
    why: 'User Account Control stops programs from silently making system-wide changes.',
  },
  {
    id: 'tpm',
    title: 'Security chip (TPM 2.0) present',
    category: 'integrity',
    severity: 'recommended',
    platforms: ['win32'],
    why: 'The TPM protects encryption keys and sign-in secrets from being copied off the device.',
  },
] as const satisfies readonly CheckDefinition[];

export type CheckId = (typeof CHECKS)[number]['id'];

export const CHECK_IDS: readonly string[] = CHECKS.map((c) => c.id);

export function findCheck(id: string): CheckDefinition | undefined {
  return CHECKS.find((c) => c.id === id);
}
