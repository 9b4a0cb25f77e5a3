import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';

export interface ListeningSocket {
  address: string;
  port: number;
  family: 4 | 6;
}

const TCP_LISTEN = '0A';

/** A 32-bit word of /proc/net/tcp*: hex of the address as it sits in memory, i.e. little-endian on x86/arm. */
function wordBytes(hex8: string): number[] {
  const bytes = [0, 2, 4, 6].map((i) => Number.parseInt(hex8.slice(i, i + 2), 16));
  return bytes.reverse();
}

/** "0100007F" -> "127.0.0.1"; 32 hex digits -> compressed IPv6 text. */
export function decodeProcNetAddress(hex: string): string {
  if (hex.length === 8) return wordBytes(hex).join('.');
  const bytes: number[] = [];
  for (let i = 0; i < 32; i += 8) bytes.push(...wordBytes(hex.slice(i, i + 8)));
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return `::ffff:${bytes.slice(12).join('.')}`;
  const text = groups.join(':');
  // Compress the first longest run of zero groups, as inet_ntop does.
  const m = /(?:^|:)0(?::0)+(?::|$)/.exec(text);
  if (m === null) return text;
  const longest = [...text.matchAll(/(?:^|:)0(?::0)+(?::|$)/g)].reduce((a, b) => (b[0].length > a[0].length ? b : a), m);
  return `${text.slice(0, longest.index)}::${text.slice(longest.index + longest[0].length)}`;
}

/** Sockets in LISTEN state from the text of /proc/net/tcp or /proc/net/tcp6 (format: proc_net_tcp.rst). */
export function parseProcNetTcp(text: string, family: 4 | 6): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    if (f[3] !== TCP_LISTEN || local === undefined) continue;
    const [addr, port] = local.split(':');
    if (addr === undefined || port === undefined) continue;
    out.push({ address: decodeProcNetAddress(addr), port: Number.parseInt(port, 16), family });
  }
  return out;
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

/** `Port` lines of sshd_config(5); sshd listens on 22 when there are none. */
export function parseSshdPorts(config: string): number[] {
  const ports = [...config.matchAll(/^\s*Port\s+(\d+)\s*$/gim)].map((m) => Number(m[1]));
  return ports.length > 0 ? ports : [22];
}

export function judgeSshServer(sockets: readonly ListeningSocket[], sshPorts: readonly number[]): Observation {
  const ports = [...new Set([22, ...sshPorts])];
  const ssh = sockets.filter((s) => ports.includes(s.port));
  const exposed = ssh.filter((s) => !isLoopback(s.address));
  const show = (s: ListeningSocket): string => (s.family === 6 ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`);
  const evidence = { sshPorts: ports, listening: ssh.map(show), exposed: exposed.map(show) };
  if (exposed.length > 0) {
    return { status: 'fail', evidence, reason: `an SSH port is open to the network on ${exposed.map(show).join(', ')}` };
  }
  return {
    status: 'pass',
    evidence,
    reason: ssh.length > 0 ? 'SSH listens on loopback only' : 'nothing listens on an SSH port',
  };
}

export const sshServer: PlatformCheck = {
  collect: async (ctx) => {
    const [tcp, tcp6, config] = await Promise.all([
      ctx.readFile('/proc/net/tcp'),
      // No IPv6 in the kernel means no tcp6 file, which is no listener rather than an error.
      ctx.readFile('/proc/net/tcp6').catch(() => ''),
      // sshd_config is world-readable on the distributions we target; a missing one means the default port.
      ctx.readFile('/etc/ssh/sshd_config').catch(() => ''),
    ]);
    const sockets = [...parseProcNetTcp(tcp, 4), ...parseProcNetTcp(tcp6, 6)];
    return judgeSshServer(sockets, parseSshdPorts(config));
  },
  remediation: {
    guides: [
      {
        label: 'Debian / Ubuntu',
        when: { distroFamily: 'debian' },
        steps: [
          'If you do not need remote logins, open a terminal and run `sudo systemctl disable --now ssh` (this stops the SSH server).',
          'If you do need it, ask IT to restrict it: set `ListenAddress 127.0.0.1` in /etc/ssh/sshd_config or allow it only through the company VPN.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'gnome-sharing',
        needsAdmin: true,
      },
      {
        label: 'Fedora / RHEL',
        when: { distroFamily: 'fedora' },
        steps: [
          'If you do not need remote logins, open a terminal and run `sudo systemctl disable --now sshd` (this stops the SSH server).',
          'If you do need it, ask IT to restrict it: set `ListenAddress 127.0.0.1` in /etc/ssh/sshd_config or allow it only through the company VPN.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'gnome-sharing',
        needsAdmin: true,
      },
      {
        label: 'Other distributions',
        steps: [
          'Stop and disable the SSH service (`sudo systemctl disable --now sshd`), or ask IT to restrict it to the VPN.',
          'Choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
    ],
  },
};
