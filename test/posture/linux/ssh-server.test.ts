import { describe, expect, it } from 'vitest';
import { decodeProcNetAddress, judgeSshServer, parseProcNetTcp, parseSshdPorts } from '../../../src/posture/linux/ssh-server.js';
import { fixture } from './fixture.js';

describe('decodeProcNetAddress', () => {
  it('decodes IPv4 words stored little-endian', () => {
    expect(decodeProcNetAddress('0100007F')).toBe('127.0.0.1');
    expect(decodeProcNetAddress('3500007F')).toBe('127.0.0.53');
    expect(decodeProcNetAddress('00000000')).toBe('0.0.0.0');
  });

  it('decodes IPv6 as four little-endian words (values per proc_net_tcp.rst layout)', () => {
    expect(decodeProcNetAddress('00000000000000000000000000000000')).toBe('::');
    expect(decodeProcNetAddress('00000000000000000000000001000000')).toBe('::1');
    expect(decodeProcNetAddress('0000000000000000FFFF00000100007F')).toBe('::ffff:127.0.0.1');
    expect(decodeProcNetAddress('000080FE00000000FF005452E1D6A2FE')).toBe('fe80::5254:ff:fea2:d6e1');
  });
});

describe('parseProcNetTcp', () => {
  it('finds sshd on 0.0.0.0:22 in a published /proc/net/tcp and fails', () => {
    const sockets = parseProcNetTcp(fixture('proc-net-tcp.goss804.txt'), 4);
    expect(sockets).toHaveLength(8);
    expect(sockets[1]).toEqual({ address: '0.0.0.0', port: 22, family: 4 });
    const o = judgeSshServer(sockets, [22]);
    expect(o.status).toBe('fail');
    expect(o.evidence.exposed).toEqual(['0.0.0.0:22']);
  });

  it('passes a loopback-only port 22 recorded on this machine', () => {
    const sockets = parseProcNetTcp(fixture('proc-net-tcp.loopback22.debian12.txt'), 4);
    expect(sockets).toEqual([
      { address: '0.0.0.0', port: 2024, family: 4 },
      { address: '127.0.0.1', port: 22, family: 4 },
    ]);
    expect(judgeSshServer(sockets, [22])).toMatchObject({ status: 'pass', reason: 'SSH listens on loopback only' });
  });

  it('reads a header-only tcp6 as no sockets', () => {
    expect(parseProcNetTcp(fixture('proc-net-tcp6.debian12.txt'), 6)).toEqual([]);
  });

  it('fails on a custom sshd port open on ::', () => {
    const o = judgeSshServer([{ address: '::', port: 2222, family: 6 }], parseSshdPorts('# comment\nPort 2222\n'));
    expect(o).toMatchObject({ status: 'fail', evidence: { exposed: ['[::]:2222'] } });
  });
});

describe('parseSshdPorts', () => {
  it('defaults to 22', () => {
    expect(parseSshdPorts('#Port 22\nPermitRootLogin no\n')).toEqual([22]);
  });
});
