import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string; build: Record<string, unknown> };

describe('electron-builder config', () => {
  it("validates against electron-builder's own schema", () => {
    const schemaPath = createRequire(join(ROOT, 'node_modules', 'electron-builder', 'package.json')).resolve('app-builder-lib/scheme.json');
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    expect(validate(pkg.build), JSON.stringify(validate.errors, null, 1)).toBe(true);
  });

  it('sets the fuses the security checklist asks for', () => {
    expect(pkg.build.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      onlyLoadAppFromAsar: true,
      enableEmbeddedAsarIntegrityValidation: true,
    });
    expect(pkg.build.asar).toBe(true);
    expect(pkg.build.asarUnpack).toEqual(['native-scripts/**/*']);
  });

  it('starts the bundled tray', () => {
    expect(pkg.main).toBe('dist/electron/main.js');
  });
});
