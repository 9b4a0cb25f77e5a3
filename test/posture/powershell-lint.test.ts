import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers.js';

const LINT = join(ROOT, 'scripts', 'lint-powershell.mjs');

async function lint(args: readonly string[], cwd = ROOT): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [LINT, ...args], { cwd });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

interface Finding {
  line: number;
  col: number;
  rule: string;
}

const HEADER = "$ErrorActionPreference = 'Stop'\n";

// One script per rule, each valid except for that rule, so a snippet that fires the wrong rule shows up too.
const SNIPPETS: Record<string, string> = {
  'syntax-error.ps1': `${HEADER}Get-Item x\nif ($x { Get-Foo\n`,
  'syntax-missing.ps1': `${HEADER}function Get-A {\n  Get-Item x\n`,
  'alias.ps1': `${HEADER}Get-ChildItem |\n  % { $_.Name } | select -First 1\nforeach ($n in 1..2) { $n }\n`,
  'write-host.ps1': `${HEADER}\nWrite-Host 'done'\n`,
  'iex.ps1': `${HEADER}Invoke-Expression 'Get-Date'\n`,
  'iex-alias.ps1': `${HEADER}iex 'Get-Date'\n`,
  'wmi.ps1': `${HEADER}$bios = Get-WmiObject -Class Win32_BIOS\n`,
  'formatted.ps1': `${HEADER}Get-Process | Format-Table\n$t = Get-Service | Out-String\nGet-Item x | fl\n`,
  'json-depth.ps1': `${HEADER}@{ a = @{ b = @{ c = 1 } } } | ConvertTo-Json -Compress\n@{ a = 1 } | ConvertTo-Json -depth:3\n`,
  'eap-missing.ps1': `function Set-Stop { $ErrorActionPreference = 'Stop' }\nGet-Item x\n`,
  'eap-continue.ps1': `# header\n$ErrorActionPreference = 'Continue'\n`,
  'empty-catch.ps1': `${HEADER}try { Get-Item x } catch { }\n`,
  // Rule words inside strings and comments, and legitimate spellings, must not fire anything.
  'clean.ps1': [
    '# gwmi, iex, Write-Host and Format-List in a comment',
    "$ErrorActionPreference = [System.Management.Automation.ActionPreference]::Stop",
    "$s = 'Write-Host gwmi Format-List Out-String ConvertTo-Json'",
    '$t = "% ? select $(1)"',
    'foreach ($n in @(1, 2)) { Write-Output "item $n" }',
    '$lines = (& "$env:SystemRoot\\System32\\dsregcmd.exe" /status) -join "`n"',
    '@{ a = 1 } | ConvertTo-Json -Depth 4 -Compress',
    'try { Get-Item x } catch { $null = $_ }',
    '',
  ].join('\n'),
};

describe('scripts/lint-powershell.mjs', () => {
  let dir = '';
  let code = -1;
  let out = '';
  const findings = new Map<string, Finding[]>();

  beforeAll(async () => {
    dir = tempDir('vigil-pslint-');
    for (const [name, text] of Object.entries(SNIPPETS)) writeFileSync(join(dir, name), text);
    ({ code, out } = await lint(['.'], dir));
    for (const name of Object.keys(SNIPPETS)) findings.set(name, []);
    for (const m of out.matchAll(/^([\w-]+\.ps1):(\d+):(\d+) (\w+) /gm)) {
      findings.get(m[1] ?? '')?.push({ line: Number(m[2]), col: Number(m[3]), rule: m[4] ?? '' });
    }
  }, 60_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('accepts the real Windows probes', async () => {
    const real = await lint([]);
    expect(real.out).toContain('powershell lint (tree-sitter): 2 file(s), 0 finding(s)');
    expect(real.code).toBe(0);
  }, 60_000);

  it('fails with one line per finding in file:line:col rule message form', () => {
    expect(code).toBe(1);
    expect(out).toMatch(/^alias\.ps1:3:3 PSAvoidUsingCmdletAliases '%' is an alias of ForEach-Object; use the full name$/m);
    expect(out).toMatch(/powershell lint \(tree-sitter\): 13 file\(s\), \d+ finding\(s\)/);
  });

  it('reports a syntax error with its position', () => {
    expect(findings.get('syntax-error.ps1')).toEqual([{ line: 3, col: 1, rule: 'syntax' }]);
    expect(findings.get('syntax-missing.ps1')).toEqual([{ line: 3, col: 13, rule: 'syntax' }]);
    expect(out).toMatch(/^syntax-missing\.ps1:3:13 syntax missing "}"$/m);
  });

  it('PSAvoidUsingCmdletAliases: % and select in a pipeline, but not the foreach statement', () => {
    expect(findings.get('alias.ps1')).toEqual([
      { line: 3, col: 3, rule: 'PSAvoidUsingCmdletAliases' },
      { line: 3, col: 19, rule: 'PSAvoidUsingCmdletAliases' },
    ]);
  });

  it('PSAvoidUsingWriteHost', () => {
    expect(findings.get('write-host.ps1')).toEqual([{ line: 3, col: 1, rule: 'PSAvoidUsingWriteHost' }]);
  });

  it('PSAvoidUsingInvokeExpression, also behind its alias', () => {
    expect(findings.get('iex.ps1')).toEqual([{ line: 2, col: 1, rule: 'PSAvoidUsingInvokeExpression' }]);
    expect(findings.get('iex-alias.ps1')?.map((f) => f.rule)).toEqual(['PSAvoidUsingCmdletAliases', 'PSAvoidUsingInvokeExpression']);
  });

  it('PSAvoidUsingWMICmdlet', () => {
    expect(findings.get('wmi.ps1')).toEqual([{ line: 2, col: 9, rule: 'PSAvoidUsingWMICmdlet' }]);
  });

  it('VigilAvoidFormattedText: Format-Table, Out-String and fl', () => {
    expect(findings.get('formatted.ps1')).toEqual([
      { line: 2, col: 15, rule: 'VigilAvoidFormattedText' },
      { line: 3, col: 20, rule: 'VigilAvoidFormattedText' },
      { line: 4, col: 14, rule: 'PSAvoidUsingCmdletAliases' },
      { line: 4, col: 14, rule: 'VigilAvoidFormattedText' },
    ]);
  });

  it('VigilConvertToJsonDepth: flags a missing -Depth, accepts -depth:N', () => {
    expect(findings.get('json-depth.ps1')).toEqual([{ line: 2, col: 32, rule: 'VigilConvertToJsonDepth' }]);
  });

  it('VigilErrorActionPreference: set inside a function only, or not to Stop', () => {
    expect(findings.get('eap-missing.ps1')).toEqual([{ line: 1, col: 1, rule: 'VigilErrorActionPreference' }]);
    expect(findings.get('eap-continue.ps1')).toEqual([{ line: 2, col: 1, rule: 'VigilErrorActionPreference' }]);
  });

  it('PSAvoidUsingEmptyCatchBlock', () => {
    expect(findings.get('empty-catch.ps1')).toEqual([{ line: 2, col: 20, rule: 'PSAvoidUsingEmptyCatchBlock' }]);
  });

  it('ignores rule words in strings and comments', () => {
    expect(findings.get('clean.ps1')).toEqual([]);
  });

  it('fails when there is nothing to lint, so a moved directory cannot pass silently', async () => {
    const empty = tempDir('vigil-pslint-empty-');
    try {
      const r = await lint([empty]);
      expect(r.code).toBe(2);
      expect(r.out).toContain('no .ps1 files');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
