import { describe, expect, it } from 'vitest';
import { findGuestUsers, judgeGuest, parseLightdmAllowGuest } from '../../../src/posture/linux/guest-account.js';
import { fixture } from './fixture.js';

const none = { lightdmInstalled: false, lightdmAllowGuest: undefined, lightdmConfigSource: null, guestScript: false, guestUsers: [] };

describe('parseLightdmAllowGuest', () => {
  it('finds nothing set in the stock Debian lightdm.conf (all commented)', () => {
    expect(parseLightdmAllowGuest(fixture('lightdm.debian12.conf'))).toBeUndefined();
  });

  it('reads allow-guest=true from the [SeatDefaults] of a real Xubuntu drop-in', () => {
    expect(parseLightdmAllowGuest(fixture('lightdm-10-xubuntu.conf'))).toBe(true);
  });

  it('ignores allow-guest outside seat sections and lets the last one win', () => {
    expect(parseLightdmAllowGuest('[LightDM]\nallow-guest=true\n[Seat:*]\nallow-guest=true\nallow-guest=false\n')).toBe(false);
  });
});

describe('findGuestUsers', () => {
  it('finds guest accounts with a login shell only', () => {
    const passwd = [
      'root:x:0:0:root:/root:/bin/bash',
      'guest:x:1001:1001::/home/guest:/bin/bash',
      'guest-ab12cd:x:999:999:Guest:/tmp/guest-ab12cd:/bin/bash',
      'guestlike:x:1002:1002::/home/g:/bin/bash',
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
    ].join('\n');
    expect(findGuestUsers(passwd)).toEqual(['guest', 'guest-ab12cd']);
    expect(findGuestUsers('guest:x:1001:1001::/home/guest:/usr/sbin/nologin\n')).toEqual([]);
  });
});

describe('judgeGuest', () => {
  it('passes with no display manager guest and no guest users', () => {
    expect(judgeGuest(none).status).toBe('pass');
  });

  it('fails on explicit allow-guest=true', () => {
    expect(judgeGuest({ ...none, lightdmInstalled: true, lightdmAllowGuest: true }).status).toBe('fail');
  });

  it("fails on LightDM's default only when the guest-account script exists", () => {
    expect(judgeGuest({ ...none, lightdmInstalled: true }).status).toBe('pass');
    expect(judgeGuest({ ...none, lightdmInstalled: true, guestScript: true }).status).toBe('fail');
    expect(judgeGuest({ ...none, lightdmInstalled: true, guestScript: true, lightdmAllowGuest: false }).status).toBe('pass');
  });
});
