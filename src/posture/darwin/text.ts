/**
 * Parsers for the macOS tools that only print text. These tools print English regardless of the user's
 * language (they are not localized), but their wording changed between releases; every branch below is
 * backed by a fixture in test/fixtures/darwin/.
 */

export type FileVaultState = 'on' | 'off' | 'encrypting' | 'decrypting' | 'unknown';

export interface FileVaultStatus {
  state: FileVaultState;
  /** Percent done while encrypting or decrypting; null when fdesetup says "Pending" (e.g. on battery). */
  percent: number | null;
  /** "FileVault is Off" with a deferred enablement waiting for the next login or restart. */
  deferred: boolean;
}

/** `fdesetup status`. Progress lines win over the headline: "FileVault is On." is printed while encrypting too. */
export function parseFdesetupStatus(text: string): FileVaultStatus {
  const progress = /(Encryption|Decryption) in progress:\s*(?:Percent completed\s*=\s*([\d.]+)|(\w+))/i.exec(text);
  const deferred = /Deferred enablement appears to be active/i.test(text);
  if (progress) {
    const pct = progress[2] !== undefined ? Number(progress[2]) : null;
    return { state: progress[1]?.toLowerCase() === 'encryption' ? 'encrypting' : 'decrypting', percent: pct, deferred };
  }
  if (/FileVault is On\b/i.test(text)) return { state: 'on', percent: null, deferred };
  if (/FileVault is Off\b/i.test(text)) return { state: 'off', percent: null, deferred };
  return { state: 'unknown', percent: null, deferred };
}

/**
 * `socketfilterfw --getglobalstate`. 0 = off, 1 = on, 2 = on and blocking all incoming connections. macOS 15
 * prints "(State = n)"; older releases print only "Firewall is enabled." / "Firewall is disabled.".
 */
export function parseFirewallGlobalState(text: string): 0 | 1 | 2 | undefined {
  const m = /State\s*=\s*([012])/.exec(text);
  if (m) return Number(m[1]) as 0 | 1 | 2;
  if (/Firewall is blocking all/i.test(text)) return 2;
  if (/Firewall is enabled/i.test(text)) return 1;
  if (/Firewall is disabled/i.test(text)) return 0;
  return undefined;
}

/** `socketfilterfw --getstealthmode`: "Stealth mode enabled" (older) or "Firewall stealth mode is on" (14+). */
export function parseStealthMode(text: string): boolean | undefined {
  if (/stealth mode (is )?(enabled|on)\b/i.test(text)) return true;
  if (/stealth mode (is )?(disabled|off)\b/i.test(text)) return false;
  return undefined;
}

/** `spctl --status`: "assessments enabled" / "assessments disabled". */
export function parseSpctlStatus(text: string): boolean | undefined {
  if (/assessments enabled/i.test(text)) return true;
  if (/assessments disabled/i.test(text)) return false;
  return undefined;
}

export interface SipStatus {
  status: 'enabled' | 'disabled' | 'unknown';
  /** "(Custom Configuration)": some protections were switched off with csrutil enable --without. */
  custom: boolean;
  /** Protections listed as disabled under "Configuration:". */
  disabledProtections: string[];
}

/** `csrutil status`. A custom configuration reports "enabled" or "unknown" but has protections switched off. */
export function parseCsrutilStatus(text: string): SipStatus | undefined {
  const m = /System Integrity Protection status:\s*(enabled|disabled|unknown)(\s*\(Custom Configuration\))?/i.exec(text);
  if (!m) return undefined;
  const disabledProtections: string[] = [];
  for (const line of text.split('\n')) {
    const c = /^\s+([A-Za-z][\w -]+?):\s*disabled\s*$/i.exec(line);
    // "Apple Internal" is disabled on every production Mac; it is not a protection.
    if (c?.[1] && c[1] !== 'Apple Internal') disabledProtections.push(c[1]);
  }
  return { status: (m[1] ?? 'unknown').toLowerCase() as SipStatus['status'], custom: m[2] !== undefined, disabledProtections };
}

export interface MdmEnrollment {
  dep: boolean | undefined;
  enrolled: boolean | undefined;
  userApproved: boolean;
  server: string | null;
}

/** `profiles status -type enrollment`: "Enrolled via DEP: No", "MDM enrollment: Yes (User Approved)", "MDM server: ...". */
export function parseProfilesEnrollment(text: string): MdmEnrollment {
  const yesNo = (re: RegExp): boolean | undefined => {
    const m = re.exec(text);
    return m ? m[1]?.toLowerCase() === 'yes' : undefined;
  };
  return {
    dep: yesNo(/Enrolled via DEP:\s*(Yes|No)/i),
    enrolled: yesNo(/MDM enrollment:\s*(Yes|No)/i),
    userApproved: /MDM enrollment:\s*Yes\s*\(User Approved\)/i.test(text),
    server: /MDM server:\s*(\S+)/i.exec(text)?.[1] ?? null,
  };
}

export type ScreenLockSetting = { passwordRequired: false } | { passwordRequired: true; delaySeconds: number };

/**
 * `sysadminctl -screenLock status` (stderr, with a timestamp prefix): "screenLock delay is immediate",
 * "screenLock delay is 300 seconds", "screenLock is off". A delay of -1 also means off.
 */
export function parseSysadminctlScreenLock(text: string): ScreenLockSetting | undefined {
  if (/screenLock is off/i.test(text)) return { passwordRequired: false };
  if (/screenLock delay is immediate/i.test(text)) return { passwordRequired: true, delaySeconds: 0 };
  const m = /screenLock delay is (-?\d+)(?:\.\d+)? seconds?/i.exec(text);
  if (!m) return undefined;
  const delay = Number(m[1]);
  return delay < 0 ? { passwordRequired: false } : { passwordRequired: true, delaySeconds: delay };
}

export interface PendingUpdate {
  label: string;
  title: string;
  recommended: boolean;
  restart: boolean;
}

export type SoftwareUpdateList = { state: 'none' } | { state: 'pending'; updates: PendingUpdate[] } | { state: 'unknown' };

/**
 * `softwareupdate --list`. Since 10.15 each update is "* Label: X" followed by a tab-indented
 * "Title: ..., Version: ..., Size: ...K, Recommended: YES, Action: restart," line. Anything that is neither a
 * list nor "No new software available." (offline, catalog errors) is unknown rather than up to date.
 */
export function parseSoftwareUpdateList(stdout: string, stderr: string): SoftwareUpdateList {
  const updates: PendingUpdate[] = [];
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const label = /^\s*\*\s*Label:\s*(.+?)\s*$/.exec(lines[i] ?? '');
    if (!label?.[1]) continue;
    const detail = lines[i + 1] ?? '';
    updates.push({
      label: label[1],
      title: /Title:\s*([^,]+)/.exec(detail)?.[1]?.trim() ?? label[1],
      recommended: /Recommended:\s*YES/i.test(detail),
      restart: /Action:\s*restart/i.test(detail),
    });
  }
  if (updates.length > 0) return { state: 'pending', updates };
  if (/No new software available/i.test(`${stdout}\n${stderr}`)) return { state: 'none' };
  return { state: 'unknown' };
}

/**
 * `launchctl print-disabled system` line for sshd. macOS 13+ prints `"com.openssh.sshd" => disabled|enabled`;
 * older releases print `=> true` (disabled) or `=> false` (enabled).
 */
export function parseSshdLaunchd(text: string): 'enabled' | 'disabled' | undefined {
  const m = /"com\.openssh\.sshd"\s*=>\s*(\w+)/.exec(text);
  const v = m?.[1]?.toLowerCase();
  if (v === 'disabled' || v === 'true') return 'disabled';
  if (v === 'enabled' || v === 'false') return 'enabled';
  return undefined;
}

/** Local TCP ports in LISTEN state from `netstat -anv -p tcp` lines ("tcp4 0 0 *.22 *.* LISTEN ..."). */
export function parseNetstatListeningPorts(text: string): number[] {
  const ports = new Set<number>();
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (!cols[0]?.startsWith('tcp') || !cols.includes('LISTEN')) continue;
    const port = /\.(\d+)$/.exec(cols[3] ?? '')?.[1];
    if (port) ports.add(Number(port));
  }
  return [...ports].sort((a, b) => a - b);
}
