import { describe, expect, it } from 'vitest';
import { parseTrayArgs } from '../../src/ui/args.js';

describe('tray command line', () => {
  it('starts visible with no flags', () => {
    expect(parseTrayArgs([])).toEqual({ hidden: false, global: {} });
  });

  it('reads --hidden and the global options in both spellings', () => {
    expect(parseTrayArgs(['--hidden', '--config', '/c.json', '--state-dir=/s', '--log-level', 'debug'])).toEqual({
      hidden: true,
      global: { config: '/c.json', stateDir: '/s', logLevel: 'debug' },
    });
  });

  it('ignores the switches Electron and Chromium add', () => {
    expect(parseTrayArgs(['--no-sandbox', '--enable-logging', '--ozone-platform=x11', '--hidden'])).toEqual({ hidden: true, global: {} });
  });

  it('reads the smoke-test mode', () => {
    expect(parseTrayArgs(['--smoke']).smoke).toEqual({ measure: false });
    expect(parseTrayArgs(['--smoke', '--measure']).smoke).toEqual({ measure: true });
    expect(parseTrayArgs(['--measure']).smoke).toBeUndefined();
  });

  it('ignores a value flag with no value', () => {
    expect(parseTrayArgs(['--config']).global).toEqual({});
    expect(parseTrayArgs(['--config=']).global).toEqual({});
  });
});
