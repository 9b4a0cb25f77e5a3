import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ROOT } from '../helpers.js';
import { run } from '../../src/posture/exec.js';
import { FactStore } from '../../src/posture/facts.js';
import { nativeScriptsCandidates, nativeScriptsDir, parseProbeOutput, probeCommand, runProbe, type ProbeSpec } from '../../src/posture/probes.js';
import { DARWIN_DEVICE_PROBE, DARWIN_POSTURE_PROBE, DARWIN_UPDATES_PROBE } from '../../src/posture/darwin/probe.js';
import { WIN32_DEVICE_PROBE, WIN32_POSTURE_PROBE } from '../../src/posture/win32/probe.js';
import { collectDarwinDeviceFacts } from '../../src/posture/darwin/device-facts.js';
import { parsePlistXml } from '../../src/posture/darwin/plist.js';

const SH_PROBES: ProbeSpec<z.ZodType<{ probeVersion: 1 }>>[] = [DARWIN_POSTURE_PROBE, DARWIN_UPDATES_PROBE, DARWIN_DEVICE_PROBE];
const PS_PROBES: ProbeSpec<z.ZodType<{ probeVersion: 1 }>>[] = [WIN32_POSTURE_PROBE, WIN32_DEVICE_PROBE];

function scriptText(spec: ProbeSpec<z.ZodType>): string {
  return readFileSync(join(ROOT, 'native-scripts', spec.script), 'utf8');
}

function topKeys(schema: z.ZodType): string[] {
  if (!(schema instanceof z.ZodObject)) throw new Error('probe schemas are objects');
  return Object.keys(schema.shape).sort();
}

/** Every object key anywhere in a schema, through lists, nullables, unions and preprocessors. */
function allKeys(schema: z.ZodType): Set<string> {
  const out = new Set<string>();
  const walk = (s: z.ZodType): void => {
    if (s instanceof z.ZodObject) {
      for (const [k, v] of Object.entries<z.ZodType>(s.shape)) {
        out.add(k);
        walk(v);
      }
    } else if (s instanceof z.ZodArray) walk(s.element as z.ZodType);
    else if (s instanceof z.ZodNullable || s instanceof z.ZodOptional) walk(s.unwrap() as z.ZodType);
    else if (s instanceof z.ZodUnion) for (const o of s.options as z.ZodType[]) walk(o);
    else if (s instanceof z.ZodPipe) {
      walk(s.in as z.ZodType);
      walk(s.out as z.ZodType);
    }
  };
  walk(schema);
  return out;
}

describe('probe scripts and their JSON contracts cannot drift apart', () => {
  it.each(SH_PROBES.map((p) => [p.script, p] as const))('%s emits exactly the schema keys', (_, spec) => {
    const emitted = new Set<string>();
    for (const line of scriptText(spec).split('\n').filter((l) => l.includes('printf'))) {
      for (const m of line.matchAll(/\\?"(\w+)\\?":/g)) if (m[1]) emitted.add(m[1]);
    }
    expect([...emitted].sort()).toEqual(topKeys(spec.schema));
  });

  it('windows/posture.ps1 sets exactly the top-level keys and names every nested field', () => {
    const text = scriptText(WIN32_POSTURE_PROBE);
    const top = new Set(['probeVersion', ...[...text.matchAll(/^\$result\.(\w+) = /gm)].map((m) => m[1] ?? '')]);
    expect([...top].sort()).toEqual(topKeys(WIN32_POSTURE_PROBE.schema));
    const words = new Set(text.match(/\w+/g));
    // value/error come from Invoke-Section; category/hresult from its catch block.
    const missing = [...allKeys(WIN32_POSTURE_PROBE.schema)].filter((k) => !words.has(k));
    expect(missing).toEqual([]);
  });

  it('windows/device.ps1 emits exactly the schema keys', () => {
    const text = scriptText(WIN32_DEVICE_PROBE);
    const block = text.slice(text.lastIndexOf('[ordered]@{'));
    const emitted = [...block.matchAll(/^\s+(\w+) = /gm)].map((m) => m[1] ?? '');
    expect(emitted.sort()).toEqual(topKeys(WIN32_DEVICE_PROBE.schema));
  });

  it('PowerShell probes run without profile or prompts and compress their JSON', () => {
    for (const spec of PS_PROBES) {
      expect(probeCommand(join('x', spec.script))).toEqual({
        command: 'powershell.exe',
        args: ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', join('x', spec.script)],
      });
      expect(scriptText(spec)).toMatch(/ConvertTo-Json -Depth \d+ -Compress/);
    }
    expect(probeCommand('/a/b.sh')).toEqual({ command: '/bin/sh', args: ['/a/b.sh'] });
  });
});

describe('native-scripts resolver', () => {
  it('prefers the unpacked copy inside a packaged Electron app', () => {
    const c = nativeScriptsCandidates('/Applications/Vigil.app/Contents/Resources/app.asar/dist/src/posture');
    expect(c).toContain('/Applications/Vigil.app/Contents/Resources/app.asar.unpacked/native-scripts');
    expect(c.some((p) => p.includes('app.asar/'))).toBe(false);
  });

  it('covers the source tree and the build', () => {
    expect(nativeScriptsCandidates('/repo/src/posture')).toContain('/repo/native-scripts');
    expect(nativeScriptsCandidates('/repo/dist/src/posture')).toContain('/repo/dist/native-scripts');
  });

  it('honours VIGIL_NATIVE_SCRIPTS_DIR and finds this tree otherwise', () => {
    expect(nativeScriptsDir({ VIGIL_NATIVE_SCRIPTS_DIR: '/opt/vigil/scripts' })).toBe('/opt/vigil/scripts');
    expect(nativeScriptsDir({})).toBe(join(ROOT, 'native-scripts'));
  });
});

describe('probe output handling', () => {
  const spec = { script: 't.sh', schema: z.strictObject({ a: z.number() }), timeoutMs: 100 };

  it('strips a UTF-8 BOM and reports contract violations by path', () => {
    expect(parseProbeOutput(spec, '\uFEFF{"a":1}')).toEqual({ a: 1 });
    expect(() => parseProbeOutput(spec, '{"a":"x"}')).toThrow(/contract at a/);
  });

  it('turns a non-zero exit into an error naming the script', async () => {
    const ctx = { env: {}, run: () => Promise.resolve({ code: 1, stdout: '', stderr: 'boom' }) };
    await expect(runProbe(ctx, spec)).rejects.toThrow(/probe t.sh: exited with 1: boom/);
  });
});

describe('the macOS probes on this (Linux) machine', () => {
  // The macOS tools are missing here, so this checks what can be checked: the scripts run under /bin/sh,
  // print one JSON object that meets the contract, and escape real multi-line text (the process list).
  const ctx = { env: process.env, run: (c: string, a: readonly string[], o?: { timeoutMs?: number }) => run(c, a, o) };

  it.each(SH_PROBES.map((p) => [p.script, p] as const))('%s prints valid JSON that meets its contract', async (_, spec) => {
    const out = await runProbe(ctx, spec);
    expect(out.probeVersion).toBe(1);
  });

  it('embeds the process list verbatim', async () => {
    const out = await runProbe(ctx, DARWIN_POSTURE_PROBE);
    expect(out.processes?.split('\n')).toContain('node');
    expect(out.fdesetupStatus).toBeNull();
  });

  it('device facts degrade to null hardware when system_profiler is missing', async () => {
    const facts = await collectDarwinDeviceFacts({ ...ctx, facts: new FactStore(60_000) }, { hostname: 'h', arch: 'x64', kernel: 'k', user: null });
    expect(facts.hardware).toEqual({ vendor: 'Apple', model: null, serial: null, uuid: null });
  });

  const shellcheck = (() => {
    try {
      execFileSync('shellcheck', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  it.skipIf(!shellcheck)('passes shellcheck', () => {
    const scripts = SH_PROBES.map((p) => join(ROOT, 'native-scripts', p.script));
    expect(() => execFileSync('shellcheck', scripts, { encoding: 'utf8' })).not.toThrow();
  });
});

describe('parsePlistXml', () => {
  it('reads every plist type, with dates as ISO text and data as base64', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>s</key><string>a &amp; b &lt;c&gt; &#233;</string>
	<key>i</key><integer>-3</integer>
	<key>r</key><real>1.5</real>
	<key>t</key><true/>
	<key>f</key><false/>
	<key>d</key><date>2023-05-04T21:40:12Z</date>
	<key>b</key><data>
	AAEC
	Aw==
	</data>
	<key>a</key><array><string>x</string><dict/><array/></array>
	<key>e</key><string></string>
	<key>es</key><string/>
</dict>
</plist>`;
    expect(parsePlistXml(xml)).toEqual({ s: 'a & b <c> é', i: -3, r: 1.5, t: true, f: false, d: '2023-05-04T21:40:12Z', b: 'AAECAw==', a: ['x', {}, []], e: '', es: '' });
  });

  it('rejects malformed input', () => {
    expect(() => parsePlistXml('<plist><dict><key>a</key></dict></plist>')).toThrow();
    expect(() => parsePlistXml('<plist><dict><string>a</string></dict></plist>')).toThrow();
  });
});
