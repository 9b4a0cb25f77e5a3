import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  firewall,
  judgeFirewall,
  parseFirewalldZone,
  parseIptablesInputPolicy,
  parseIsActive,
  parseKeyValueConfig,
  parseNftInputChains,
} from '../../../src/posture/linux/firewall.js';
import { fakeContext, fixture, ok } from './fake-context.js';

const IS_ACTIVE = 'systemctl is-active firewalld nftables netfilter-persistent iptables';
/** What sd_booted(3) looks at: present on a machine booted with systemd. */
const SYSTEMD = { '/run/systemd/system': ['sysinit.target.wants'] };

describe('parsers', () => {
  it('reads ufw and firewalld config files', () => {
    expect(parseKeyValueConfig(fixture('firewall/ufw.conf-enabled')).get('ENABLED')).toBe('yes');
    expect(parseKeyValueConfig(fixture('firewall/ufw.defaults')).get('DEFAULT_INPUT_POLICY')).toBe('DROP');
    expect(parseKeyValueConfig(fixture('firewall/firewalld.conf')).get('DefaultZone')).toBe('public');
  });

  it('reads zone targets, services and ports', () => {
    expect(parseFirewalldZone(fixture('firewall/zone-public.xml'))).toEqual({ target: 'default', services: ['ssh', 'dhcpv6-client'], ports: [] });
    expect(parseFirewalldZone(fixture('firewall/zone-trusted.xml')).target).toBe('ACCEPT');
    expect(parseFirewalldZone(fixture('firewall/zone-drop.xml')).target).toBe('DROP');
    expect(parseFirewalldZone(fixture('firewall/zone-FedoraWorkstation.xml')).ports).toEqual(['1025-65535/udp', '21/tcp', '1025-65535/tcp']);
  });

  it('reads input base chains from nft -j', () => {
    expect(parseNftInputChains(fixture('firewall/nft-ruleset-halite.json'))).toEqual([{ family: 'inet', table: 'filter', name: 'input', policy: 'drop' }]);
  });

  it('reads the iptables INPUT policy', () => {
    expect(parseIptablesInputPolicy('-P INPUT DROP\n-A INPUT -i lo -j ACCEPT\n')).toBe('DROP');
  });

  it('treats systemctl output that does not list every unit as no answer (this CI machine)', () => {
    expect(parseIsActive(fixture('firewall/ci-systemctl-is-active.stdout.txt'), ['firewalld', 'nftables'])).toBeNull();
    expect(parseIsActive('active\ninactive\n', ['firewalld', 'nftables'])).toEqual(new Map([['firewalld', 'active'], ['nftables', 'inactive']]));
  });
});

describe('judgeFirewall', () => {
  it('fails when nothing is installed', () => {
    expect(judgeFirewall({ ruleServices: null })).toMatchObject({ status: 'fail', reason: expect.stringMatching(/^no firewall is installed/) as unknown });
  });

  it('fails ufw that is on but accepts incoming by default', () => {
    expect(judgeFirewall({ ufw: { enabled: true, inputPolicy: 'ACCEPT' }, ruleServices: null }).status).toBe('fail');
  });

  it('is unknown with requires-admin when only root can read the rules', () => {
    const obs = judgeFirewall({ ruleServices: new Map([['nftables', 'active']]), rules: { denied: 'reading nftables rules needs root' } });
    expect(obs).toMatchObject({ status: 'unknown', reason: 'requires-admin: reading nftables rules needs root' });
  });
});

describe('collector', () => {
  it('passes Ubuntu with ufw enabled and the shipped DROP default', async () => {
    const ctx = fakeContext({
      dirs: SYSTEMD,
      files: { '/etc/ufw/ufw.conf': fixture('firewall/ufw.conf-enabled'), '/etc/default/ufw': fixture('firewall/ufw.defaults') },
      commands: { [IS_ACTIVE]: { code: 3, stdout: 'inactive\ninactive\ninactive\ninactive\n', stderr: '' } },
    });
    const obs = await firewall.collect(ctx);
    expect(obs).toMatchObject({ status: 'pass', evidence: { backend: 'ufw', ufw: { enabled: true, defaultInputPolicy: 'DROP' } } });
  });

  it('fails Ubuntu with ufw installed but disabled, without trying root-only probes', async () => {
    const conf = fixture('firewall/ufw.conf-enabled').replace('ENABLED=yes', 'ENABLED=no');
    const ctx = fakeContext({
      dirs: SYSTEMD,
      files: { '/etc/ufw/ufw.conf': conf, '/etc/default/ufw': fixture('firewall/ufw.defaults') },
      commands: { [IS_ACTIVE]: { code: 3, stdout: 'inactive\ninactive\ninactive\ninactive\n', stderr: '' } },
    });
    expect(await firewall.collect(ctx)).toMatchObject({ status: 'fail', reason: 'ufw is installed but turned off' });
    expect(ctx.ran).toEqual([IS_ACTIVE]);
  });

  it('passes Fedora with firewalld running in the FedoraWorkstation zone, showing the open high ports', async () => {
    const conf = fixture('firewall/firewalld.conf').replace('DefaultZone=public', 'DefaultZone=FedoraWorkstation');
    const ctx = fakeContext({
      dirs: SYSTEMD,
      files: { '/etc/firewalld/firewalld.conf': conf, '/usr/lib/firewalld/zones/FedoraWorkstation.xml': fixture('firewall/zone-FedoraWorkstation.xml') },
      commands: { [IS_ACTIVE]: { code: 3, stdout: 'active\ninactive\ninactive\ninactive\n', stderr: '' } },
    });
    const obs = await firewall.collect(ctx);
    expect(obs.status).toBe('pass');
    expect(obs.evidence.firewalld).toMatchObject({ defaultZone: 'FedoraWorkstation', target: 'default', ports: ['1025-65535/udp', '21/tcp', '1025-65535/tcp'] });
  });

  it('fails firewalld whose default zone is trusted, preferring the admin copy in /etc', async () => {
    const conf = fixture('firewall/firewalld.conf').replace('DefaultZone=public', 'DefaultZone=trusted');
    const ctx = fakeContext({
      dirs: SYSTEMD,
      files: {
        '/etc/firewalld/firewalld.conf': conf,
        '/etc/firewalld/zones/trusted.xml': fixture('firewall/zone-trusted.xml'),
        '/usr/lib/firewalld/zones/trusted.xml': fixture('firewall/zone-drop.xml'),
      },
      commands: { [IS_ACTIVE]: { code: 0, stdout: 'active\ninactive\ninactive\ninactive\n', stderr: '' } },
    });
    expect(await firewall.collect(ctx)).toMatchObject({ status: 'fail', reason: 'firewalld is running but zone "trusted" accepts all incoming connections' });
  });

  it('reads nftables rules when nftables.service loaded them and the agent may read them', async () => {
    const ctx = fakeContext({
      dirs: SYSTEMD,
      commands: {
        [IS_ACTIVE]: { code: 3, stdout: 'inactive\nactive\ninactive\ninactive\n', stderr: '' },
        'nft -j list ruleset': ok(fixture('firewall/nft-ruleset-halite.json')),
      },
    });
    expect(await firewall.collect(ctx)).toMatchObject({ status: 'pass', evidence: { backend: 'nftables' } });
  });

  it('is unknown with requires-admin when nft refuses a non-root agent', async () => {
    const ctx = fakeContext({
      dirs: SYSTEMD,
      commands: {
        [IS_ACTIVE]: { code: 3, stdout: 'inactive\nactive\ninactive\ninactive\n', stderr: '' },
        'nft -j list ruleset': { code: 1, stdout: '', stderr: 'Error: Could not process rule: Operation not permitted\n' },
      },
    });
    expect(await firewall.collect(ctx)).toMatchObject({ status: 'unknown', reason: 'requires-admin: reading nftables rules needs root' });
  });

  it('fails this CI machine: no ufw, no firewalld, no systemd, no nft or iptables; systemctl is not started without systemd', async () => {
    const ctx = fakeContext({});
    expect(await firewall.collect(ctx)).toMatchObject({ status: 'fail', evidence: { backend: null, ruleServices: null } });
    expect(ctx.ran).toEqual(['nft -j list ruleset', 'iptables -S INPUT']);
  });

  it('treats a systemctl that cannot answer as no answer, even where /run/systemd/system exists', async () => {
    const ctx = fakeContext({
      dirs: SYSTEMD,
      commands: {
        [IS_ACTIVE]: { code: 1, stdout: fixture('firewall/ci-systemctl-is-active.stdout.txt'), stderr: 'System has not been booted with systemd as init system (PID 1). Can\'t operate.\n' },
      },
    });
    expect(await firewall.collect(ctx)).toMatchObject({ status: 'fail', evidence: { backend: null, ruleServices: null } });
    expect(ctx.ran).toEqual([IS_ACTIVE, 'nft -j list ruleset', 'iptables -S INPUT']);
  });
});

describe('caching between scans', () => {
  let bin: string;
  beforeEach(() => {
    bin = mkdtempSync(join(tmpdir(), 'vigil-fw-path-'));
  });
  afterEach(() => {
    rmSync(bin, { recursive: true, force: true });
  });

  it('does not look for nft and iptables again until a PATH directory changes', async () => {
    const ctx = fakeContext({ env: { PATH: bin } });
    await firewall.collect(ctx);
    ctx.facts.beginScan();
    await firewall.collect(ctx);
    expect(ctx.ran).toEqual(['nft -j list ruleset', 'iptables -S INPUT']);

    // Installing a program adds an entry to a PATH directory, which moves the directory's mtime.
    writeFileSync(join(bin, 'nft'), '');
    utimesSync(bin, new Date(2030, 0, 1), new Date(2030, 0, 1));
    ctx.facts.beginScan();
    await firewall.collect(ctx);
    expect(ctx.ran).toEqual(['nft -j list ruleset', 'iptables -S INPUT', 'nft -j list ruleset', 'iptables -S INPUT']);
  });

  it('remembers that nft needs root, but reads rules it may read every scan', async () => {
    const denied = fakeContext({
      env: { PATH: bin },
      dirs: SYSTEMD,
      commands: {
        [IS_ACTIVE]: { code: 3, stdout: 'inactive\nactive\ninactive\ninactive\n', stderr: '' },
        'nft -j list ruleset': { code: 1, stdout: '', stderr: 'Error: Could not process rule: Operation not permitted\n' },
      },
    });
    await firewall.collect(denied);
    denied.facts.beginScan();
    expect(await firewall.collect(denied)).toMatchObject({ status: 'unknown', reason: 'requires-admin: reading nftables rules needs root' });
    expect(denied.ran.filter((c) => c.startsWith('nft'))).toHaveLength(1);

    const root = fakeContext({
      env: { PATH: bin },
      dirs: SYSTEMD,
      commands: {
        [IS_ACTIVE]: { code: 3, stdout: 'inactive\nactive\ninactive\ninactive\n', stderr: '' },
        'nft -j list ruleset': ok(fixture('firewall/nft-ruleset-halite.json')),
      },
    });
    await firewall.collect(root);
    root.facts.beginScan();
    expect(await firewall.collect(root)).toMatchObject({ status: 'pass', evidence: { backend: 'nftables' } });
    expect(root.ran.filter((c) => c.startsWith('nft'))).toHaveLength(2);
  });
});
