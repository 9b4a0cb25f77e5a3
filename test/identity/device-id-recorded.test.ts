/** Device-ID parsers on published outputs (sources: test/fixtures/darwin/README.md, test/fixtures/win32/README.md). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';
import { IOREG_ARGS, parseIoreg, parseRegMachineGuid, pickDeviceId } from '../../src/identity/device-id.js';

function fixture(rel: string): string {
  return readFileSync(join(ROOT, 'test', 'fixtures', rel), 'utf8');
}

describe('device-ID parsers', () => {
  const ioreg = fixture('darwin/ioreg/macbookpro17-1-terminal-clipped.txt');

  it('reads IOPlatformUUID and IOPlatformSerialNumber from a recorded M1 MacBook Pro ioreg', () => {
    expect(parseIoreg(ioreg)).toEqual([
      { source: 'hardware-uuid', value: '1AB2345C-03E4-57D4-A375-1234D48DE123' },
      { source: 'hardware-serial', value: 'A01BC3QFQ05D' },
    ]);
    expect(pickDeviceId(parseIoreg(ioreg))?.source).toBe('hardware-uuid');
  });

  it('takes no value from a line ioreg clipped at the terminal width', () => {
    // The recording shows how ioreg clips a long line: it ends in "$" and loses its closing quote. Clipping the
    // serial line the same way leaves it followed by the recorded next line, which opens with a quote.
    const clipped = ioreg.replace('"IOPlatformSerialNumber" = "A01BC3QFQ05D"', '"IOPlatformSerialNumber" = "A01BC$');
    expect(clipped).toContain('"A01BC$\n  "regulatory-model-number"');
    expect(parseIoreg(clipped)).toEqual([{ source: 'hardware-uuid', value: '1AB2345C-03E4-57D4-A375-1234D48DE123' }]);
  });

  it('asks ioreg for unlimited width, since it clips to the width of a terminal on stdin too', () => {
    expect(IOREG_ARGS[0]).toBe('-w0');
    expect(IOREG_ARGS).toContain('IOPlatformExpertDevice');
  });

  it('reads MachineGuid from reg.exe output (ASSEMBLED in the layout of a recorded reg query, CRLF)', () => {
    expect(parseRegMachineGuid(fixture('win32/reg/machineguid-assembled.txt'))).toEqual([
      { source: 'machine-id', value: '6f1c2a7e-5b3d-4e8f-9a21-0c4d7b6e3f15' },
    ]);
    expect(parseRegMachineGuid('ERROR: The system was unable to find the specified registry key or value.\r\n')).toEqual([]);
  });
});
