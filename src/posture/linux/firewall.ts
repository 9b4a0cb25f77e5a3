import type { CollectContext, PlatformCheck } from '../collector.js';
import { CommandNotFoundError } from '../exec.js';
import type { Evidence, Observation } from '../types.js';
import { fileStamp, stampVersion } from './file-stamp.js';

/** Parses the KEY=value files ufw and firewalld use (shell-style, optional quotes, # comments). */
export function parseKeyValueConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) continue;
    out.set(m[1], m[2].replace(/^(["'])(.*)\1$/, '$2').trim());
  }
  return out;
}

export interface FirewalldZone {
  /** "default" when the zone names none: firewalld then rejects what the zone does not allow. */
  target: string;
  services: string[];
  ports: string[];
}

function xmlAttr(tag: string, name: string): string | undefined {
  return new RegExp(`\\s${name}\\s*=\\s*(["'])(.*?)\\1`).exec(tag)?.[2];
}

/** Reads the parts of a firewalld zone file (firewalld.zone(5)) that decide what comes in. */
export function parseFirewalldZone(xml: string): FirewalldZone {
  const zoneTag = /<zone\b[^>]*>/.exec(xml)?.[0] ?? '';
  const services = [...xml.matchAll(/<service\b[^>]*>/g)].flatMap((m) => xmlAttr(m[0], 'name') ?? []);
  const ports = [...xml.matchAll(/<port\b[^>]*>/g)].flatMap((m) => {
    const port = xmlAttr(m[0], 'port');
    const proto = xmlAttr(m[0], 'protocol');
    return port && proto ? [`${port}/${proto}`] : [];
  });
  return { target: xmlAttr(zoneTag, 'target') ?? 'default', services, ports };
}

/** firewalld's "default" target rejects; only ACCEPT lets unmatched traffic in. */
export function zoneDeniesByDefault(zone: FirewalldZone): boolean {
  return zone.target.toUpperCase() !== 'ACCEPT';
}

/** `systemctl is-active a b c` prints one state per unit, in order; anything else means systemd did not answer. */
export function parseIsActive(stdout: string, units: readonly string[]): Map<string, string> | null {
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length !== units.length) return null;
  return new Map(units.map((u, i) => [u, lines[i] ?? 'unknown']));
}

export interface NftInputChain {
  family: string;
  table: string;
  name: string;
  policy: string;
}

/** Base chains hooked on input from `nft -j list ruleset`; a packet must get past all of them. */
export function parseNftInputChains(json: string): NftInputChain[] {
  const doc: unknown = JSON.parse(json);
  const items = typeof doc === 'object' && doc !== null && 'nftables' in doc && Array.isArray(doc.nftables) ? (doc.nftables as unknown[]) : [];
  const out: NftInputChain[] = [];
  for (const item of items) {
    if (typeof item !== 'object' || item === null || !('chain' in item)) continue;
    const c = item.chain as Record<string, unknown>;
    if (c.hook !== 'input' || typeof c.family !== 'string' || typeof c.table !== 'string' || typeof c.name !== 'string') continue;
    if (c.family !== 'inet' && c.family !== 'ip' && c.family !== 'ip6') continue;
    out.push({ family: c.family, table: c.table, name: c.name, policy: typeof c.policy === 'string' ? c.policy : 'accept' });
  }
  return out;
}

/** The INPUT chain policy from `iptables -S INPUT` ("-P INPUT DROP"). */
export function parseIptablesInputPolicy(text: string): string | undefined {
  return /^-P INPUT (\S+)/m.exec(text)?.[1];
}

export interface FirewallState {
  ufw?: { enabled: boolean; inputPolicy: string };
  firewalld?: { active: boolean | null; defaultZone: string; zone: FirewalldZone | null };
  /** Units that load hand-written rules; null when systemd could not be asked. */
  ruleServices: Map<string, string> | null;
  /** What reading the kernel rules directly gave: chains, or why not. */
  rules?: { backend: 'nftables' | 'iptables'; inputDeny: boolean; detail: string } | { denied: string };
}

const DENY_POLICIES = new Set(['DROP', 'REJECT']);

export function judgeFirewall(s: FirewallState): Observation {
  const evidence: Evidence = {
    ufw: s.ufw ? { enabled: s.ufw.enabled, defaultInputPolicy: s.ufw.inputPolicy } : null,
    firewalld: s.firewalld
      ? {
          active: s.firewalld.active,
          defaultZone: s.firewalld.defaultZone,
          target: s.firewalld.zone?.target ?? null,
          services: s.firewalld.zone?.services ?? null,
          ports: s.firewalld.zone?.ports ?? null,
        }
      : null,
    ruleServices: s.ruleServices ? Object.fromEntries(s.ruleServices) : null,
    rules: s.rules ? ('denied' in s.rules ? { readable: false } : { backend: s.rules.backend, inputDeny: s.rules.inputDeny, detail: s.rules.detail }) : null,
  };
  if (s.ufw?.enabled) {
    const deny = DENY_POLICIES.has(s.ufw.inputPolicy.toUpperCase());
    return {
      status: deny ? 'pass' : 'fail',
      evidence: { ...evidence, backend: 'ufw' },
      reason: deny ? 'ufw is on and blocks incoming connections by default' : `ufw is on but its default incoming policy is ${s.ufw.inputPolicy}`,
    };
  }
  if (s.firewalld?.active) {
    const { zone, defaultZone } = s.firewalld;
    if (!zone) {
      return { status: 'unknown', evidence: { ...evidence, backend: 'firewalld' }, reason: `firewalld is running but its default zone "${defaultZone}" has no readable zone file` };
    }
    const deny = zoneDeniesByDefault(zone);
    return {
      status: deny ? 'pass' : 'fail',
      evidence: { ...evidence, backend: 'firewalld' },
      reason: deny
        ? `firewalld is running; zone "${defaultZone}" refuses incoming connections it does not list`
        : `firewalld is running but zone "${defaultZone}" accepts all incoming connections`,
    };
  }
  if (s.rules && !('denied' in s.rules)) {
    return {
      status: s.rules.inputDeny ? 'pass' : 'fail',
      evidence: { ...evidence, backend: s.rules.backend },
      reason: s.rules.inputDeny ? `${s.rules.backend} drops incoming traffic by default` : `${s.rules.backend} input policy accepts by default`,
    };
  }
  if (s.rules && 'denied' in s.rules) {
    return { status: 'unknown', evidence: { ...evidence, backend: null }, reason: `requires-admin: ${s.rules.denied}` };
  }
  if (s.firewalld?.active === null) {
    return { status: 'unknown', evidence: { ...evidence, backend: 'firewalld' }, reason: 'firewalld is installed but systemd could not say whether it is running' };
  }
  if (s.ufw || s.firewalld) {
    const which = s.ufw ? 'ufw' : 'firewalld';
    return { status: 'fail', evidence: { ...evidence, backend: which }, reason: `${which} is installed but turned off` };
  }
  return { status: 'fail', evidence: { ...evidence, backend: null }, reason: 'no firewall is installed (looked for ufw, firewalld, nftables and iptables)' };
}

const RULE_UNITS = ['nftables', 'netfilter-persistent', 'iptables'] as const;
const UNITS = ['firewalld', ...RULE_UNITS] as const;

async function readOptional(ctx: CollectContext, path: string): Promise<string | null> {
  try {
    return await ctx.readFile(path);
  } catch {
    return null;
  }
}

/**
 * sd_booted(3): systemd is PID 1 exactly when /run/systemd/system is a directory. Without it systemctl can
 * only fail, so it is not started; whether systemd runs cannot change without a reboot, hence a static fact.
 */
function systemdBooted(ctx: CollectContext): Promise<boolean> {
  return ctx.facts.static('linux.systemd-booted', () => ctx.readdir('/run/systemd/system').then(() => true, () => false));
}

async function unitStates(ctx: CollectContext): Promise<Map<string, string> | null> {
  if (!(await systemdBooted(ctx))) return null;
  try {
    return parseIsActive((await ctx.run('systemctl', ['is-active', ...UNITS])).stdout, UNITS);
  } catch (err) {
    if (err instanceof CommandNotFoundError) return null;
    throw err;
  }
}

function permissionProblem(stderr: string): boolean {
  return /permission denied|operation not permitted|must be root/i.test(stderr);
}

/** Reads the kernel rules directly; this works only as root, which the agent normally is not. */
async function readKernelRules(ctx: CollectContext): Promise<FirewallState['rules']> {
  try {
    const nft = await ctx.run('nft', ['-j', 'list', 'ruleset']);
    if (nft.code === 0) {
      const chains = parseNftInputChains(nft.stdout);
      const deny = chains.some((c) => c.policy === 'drop');
      const detail = chains.map((c) => `${c.family} ${c.table} ${c.name} policy ${c.policy}`).join('; ') || 'no input chains';
      return { backend: 'nftables', inputDeny: deny, detail };
    }
    if (permissionProblem(nft.stderr)) return { denied: 'reading nftables rules needs root' };
  } catch (err) {
    if (!(err instanceof CommandNotFoundError)) throw err;
  }
  try {
    const ipt = await ctx.run('iptables', ['-S', 'INPUT']);
    if (ipt.code === 0) {
      const policy = parseIptablesInputPolicy(ipt.stdout) ?? 'ACCEPT';
      return { backend: 'iptables', inputDeny: DENY_POLICIES.has(policy), detail: `INPUT policy ${policy}` };
    }
    if (permissionProblem(ipt.stderr)) return { denied: 'reading iptables rules needs root' };
  } catch (err) {
    if (!(err instanceof CommandNotFoundError)) throw err;
  }
  return undefined;
}

/**
 * What decides whether exec finds nft and iptables: the stamps of the PATH directories (installing or removing
 * a program adds or removes an entry, which changes its directory's mtime) and of /etc/alternatives, where
 * Debian points /usr/sbin/iptables.
 */
async function toolsFingerprint(ctx: CollectContext): Promise<string> {
  const dirs = [...(ctx.env.PATH ?? '').split(':').filter(Boolean), '/etc/alternatives'];
  const stamps = await Promise.all(dirs.map(async (d) => `${d}=${stampVersion(await fileStamp(ctx, d))}`));
  return stamps.join(';');
}

/**
 * "Not installed" and "needs root" depend only on what is installed and on the agent's own privileges (which
 * do not change while it runs), so they are kept until toolsFingerprint changes. Rules that could be read are
 * read again every scan: nothing cheap says when they change.
 */
async function kernelRules(ctx: CollectContext): Promise<FirewallState['rules']> {
  const version = await toolsFingerprint(ctx);
  return ctx.facts.versioned('linux.firewall-rules', version, () => readKernelRules(ctx), (rules) => rules === undefined || 'denied' in rules);
}

/**
 * Config files and systemd first: both are readable without root and cost no more than one short process.
 * `firewall-cmd --state` would also work unprivileged, but it is a Python program that takes longer to
 * start than this whole check may.
 */
export async function readFirewallState(ctx: CollectContext): Promise<FirewallState> {
  const [ufwConf, ufwDefaults, firewalldConf, states] = await Promise.all([
    readOptional(ctx, '/etc/ufw/ufw.conf'),
    readOptional(ctx, '/etc/default/ufw'),
    readOptional(ctx, '/etc/firewalld/firewalld.conf'),
    unitStates(ctx),
  ]);
  const state: FirewallState = { ruleServices: states ? new Map(RULE_UNITS.map((u) => [u, states.get(u) ?? 'unknown'])) : null };
  if (ufwConf !== null) {
    const conf = parseKeyValueConfig(ufwConf);
    const defaults = parseKeyValueConfig(ufwDefaults ?? '');
    // ufw's own state lives in ufw.conf: ufw.service stays "active" even when ufw is disabled.
    state.ufw = { enabled: conf.get('ENABLED')?.toLowerCase() === 'yes', inputPolicy: defaults.get('DEFAULT_INPUT_POLICY') ?? 'DROP' };
  }
  if (firewalldConf !== null) {
    const zoneName = parseKeyValueConfig(firewalldConf).get('DefaultZone') || 'public';
    const active = states ? states.get('firewalld') === 'active' : null;
    let zone: FirewalldZone | null = null;
    if (active !== false) {
      // A zone edited by the admin is copied to /etc; the packaged one is the fallback.
      const xml = (await readOptional(ctx, `/etc/firewalld/zones/${zoneName}.xml`)) ?? (await readOptional(ctx, `/usr/lib/firewalld/zones/${zoneName}.xml`));
      zone = xml === null ? null : parseFirewalldZone(xml);
    }
    state.firewalld = { active, defaultZone: zoneName, zone };
  }
  const handled = state.ufw?.enabled === true || state.firewalld?.active === true;
  const rulesLoaded = states === null || RULE_UNITS.some((u) => states.get(u) === 'active');
  if (!handled && rulesLoaded) {
    const rules = await kernelRules(ctx);
    if (rules) state.rules = rules;
  }
  return state;
}

export const firewall: PlatformCheck = {
  collect: async (ctx) => judgeFirewall(await readFirewallState(ctx)),
  remediation: {
    guides: [
      {
        label: 'KDE Plasma',
        when: { desktop: 'kde' },
        steps: [
          'Open System Settings > Network > Firewall, switch "Firewall status" on and set "Default incoming policy" to "Deny" (you will be asked for your password).',
          'Choose "Apply".',
          'Open Vigil and choose "Check again".',
        ],
        deepLink: 'kde-firewall',
        needsAdmin: true,
      },
      {
        label: 'Ubuntu / Debian',
        when: { distroFamily: 'debian' },
        steps: [
          'Open a terminal (Ctrl+Alt+T), type `sudo ufw enable`, press Enter and type your password: this blocks incoming connections and keeps everything you open yourself working.',
          'If the terminal says "ufw: command not found", first run `sudo apt install ufw`, then repeat step 1.',
          'Prefer a window? Install "Firewall Configuration" (gufw) from the software centre, open it and switch Status on with Incoming set to Deny.',
          'Open Vigil and choose "Check again".',
        ],
        deepLink: 'gufw',
        needsAdmin: true,
      },
      {
        label: 'Fedora / RHEL',
        when: { distroFamily: 'fedora' },
        steps: [
          'Open a terminal, run `sudo systemctl enable --now firewalld` and type your password: this starts the firewall now and at every boot.',
          'If you were told your zone accepts everything, also run `sudo firewall-cmd --set-default-zone=public`.',
          'Prefer a window? Open "Firewall" (firewall-config) from the applications menu.',
          'Open Vigil and choose "Check again".',
        ],
        deepLink: 'firewall-config',
        needsAdmin: true,
      },
      {
        label: 'Other distributions',
        steps: [
          'Ask IT to turn on a firewall (ufw or firewalld) that blocks incoming connections by default.',
          'Open Vigil and choose "Check again".',
        ],
        needsAdmin: true,
      },
    ],
  },
};
