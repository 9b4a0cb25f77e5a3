// Lints the Windows probes (native-scripts/windows/*.ps1) without PowerShell: pwsh and PSScriptAnalyzer
// cannot be installed on the CI machine, so this parses each script with the tree-sitter PowerShell grammar
// and checks the syntax tree. Rules look only at command and assignment nodes, so a rule's word inside a
// string or a comment never triggers it. Rule names follow PSScriptAnalyzer where it has the rule.
// Prints one `file:line:col rule message` line per finding and exits 1 on any.
// Usage: node scripts/lint-powershell.mjs [file.ps1 | dir ...]   (default: native-scripts/windows)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Language, Parser } from 'web-tree-sitter';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Windows PowerShell 5.1's built-in aliases (Get-Alias on a clean install), lower-cased. An alias can be
// redefined or missing on another host, and it hides which cmdlet the other rules should judge.
const ALIASES = new Map(Object.entries({
  '%': 'ForEach-Object', '?': 'Where-Object', ac: 'Add-Content', asnp: 'Add-PSSnapin', cat: 'Get-Content',
  cd: 'Set-Location', cfs: 'ConvertFrom-String', chdir: 'Set-Location', clc: 'Clear-Content', clear: 'Clear-Host',
  clhy: 'Clear-History', cli: 'Clear-Item', clp: 'Clear-ItemProperty', cls: 'Clear-Host', clv: 'Clear-Variable',
  cnsn: 'Connect-PSSession', compare: 'Compare-Object', copy: 'Copy-Item', cp: 'Copy-Item', cpi: 'Copy-Item',
  cpp: 'Copy-ItemProperty', curl: 'Invoke-WebRequest', cvpa: 'Convert-Path', dbp: 'Disable-PSBreakpoint',
  del: 'Remove-Item', diff: 'Compare-Object', dir: 'Get-ChildItem', dnsn: 'Disconnect-PSSession',
  ebp: 'Enable-PSBreakpoint', echo: 'Write-Output', epal: 'Export-Alias', epcsv: 'Export-Csv',
  epsn: 'Export-PSSession', erase: 'Remove-Item', etsn: 'Enter-PSSession', exsn: 'Exit-PSSession',
  fc: 'Format-Custom', fhx: 'Format-Hex', fl: 'Format-List', foreach: 'ForEach-Object', ft: 'Format-Table',
  fw: 'Format-Wide', gal: 'Get-Alias', gbp: 'Get-PSBreakpoint', gc: 'Get-Content', gcb: 'Get-Clipboard',
  gci: 'Get-ChildItem', gcm: 'Get-Command', gcs: 'Get-PSCallStack', gdr: 'Get-PSDrive', ghy: 'Get-History',
  gi: 'Get-Item', gin: 'Get-ComputerInfo', gjb: 'Get-Job', gl: 'Get-Location', gm: 'Get-Member',
  gmo: 'Get-Module', gp: 'Get-ItemProperty', gps: 'Get-Process', gpv: 'Get-ItemPropertyValue',
  group: 'Group-Object', gsn: 'Get-PSSession', gsnp: 'Get-PSSnapin', gsv: 'Get-Service', gtz: 'Get-TimeZone',
  gu: 'Get-Unique', gv: 'Get-Variable', gwmi: 'Get-WmiObject', h: 'Get-History', history: 'Get-History',
  icm: 'Invoke-Command', iex: 'Invoke-Expression', ihy: 'Invoke-History', ii: 'Invoke-Item', ipal: 'Import-Alias',
  ipcsv: 'Import-Csv', ipmo: 'Import-Module', ipsn: 'Import-PSSession', irm: 'Invoke-RestMethod',
  iwmi: 'Invoke-WmiMethod', iwr: 'Invoke-WebRequest', kill: 'Stop-Process', lp: 'Out-Printer', ls: 'Get-ChildItem',
  measure: 'Measure-Object', mi: 'Move-Item', mount: 'New-PSDrive', move: 'Move-Item', mp: 'Move-ItemProperty',
  mv: 'Move-Item', nal: 'New-Alias', ndr: 'New-PSDrive', ni: 'New-Item', nmo: 'New-Module',
  npssc: 'New-PSSessionConfigurationFile', nsn: 'New-PSSession', nv: 'New-Variable', ogv: 'Out-GridView',
  oh: 'Out-Host', popd: 'Pop-Location', ps: 'Get-Process', pushd: 'Push-Location', pwd: 'Get-Location',
  r: 'Invoke-History', rbp: 'Remove-PSBreakpoint', rcjb: 'Receive-Job', rcsn: 'Receive-PSSession',
  rd: 'Remove-Item', rdr: 'Remove-PSDrive', ren: 'Rename-Item', ri: 'Remove-Item', rjb: 'Remove-Job',
  rm: 'Remove-Item', rmdir: 'Remove-Item', rmo: 'Remove-Module', rni: 'Rename-Item', rnp: 'Rename-ItemProperty',
  rp: 'Remove-ItemProperty', rsn: 'Remove-PSSession', rsnp: 'Remove-PSSnapin', rujb: 'Resume-Job',
  rv: 'Remove-Variable', rvpa: 'Resolve-Path', rwmi: 'Remove-WmiObject', sajb: 'Start-Job', sal: 'Set-Alias',
  saps: 'Start-Process', sasv: 'Start-Service', sbp: 'Set-PSBreakpoint', sc: 'Set-Content', scb: 'Set-Clipboard',
  select: 'Select-Object', set: 'Set-Variable', shcm: 'Show-Command', si: 'Set-Item', sl: 'Set-Location',
  sleep: 'Start-Sleep', sls: 'Select-String', sort: 'Sort-Object', sp: 'Set-ItemProperty', spjb: 'Stop-Job',
  spps: 'Stop-Process', spsv: 'Stop-Service', start: 'Start-Process', stz: 'Set-TimeZone', sujb: 'Suspend-Job',
  sv: 'Set-Variable', swmi: 'Set-WmiInstance', tee: 'Tee-Object', trcm: 'Trace-Command', type: 'Get-Content',
  wget: 'Invoke-WebRequest', where: 'Where-Object', wjb: 'Wait-Job', write: 'Write-Output',
}));

// The WMI v1 cmdlets (PSAvoidUsingWMICmdlet): deprecated, absent from PowerShell 7; CIM gives the same classes.
const WMI_CMDLETS = new Set(['get-wmiobject', 'remove-wmiobject', 'invoke-wmimethod', 'register-wmievent', 'set-wmiinstance']);

// The formatting system renders objects as text for a human: localized labels and values, columns cut to
// the console width. A probe must hand the caller raw values (JSON), never this text.
const FORMATTED_TEXT = new Set(['format-list', 'format-table', 'format-wide', 'format-custom', 'out-string']);

/**
 * @typedef {{ line: number, col: number, rule: string, message: string }} Finding
 * @typedef {import('web-tree-sitter').Node} Node
 */

/** @param {Node} node @param {string} rule @param {string} message @returns {Finding} */
function at(node, rule, message) {
  return { line: node.startPosition.row + 1, col: node.startPosition.column + 1, rule, message };
}

/** @param {Node} node @param {(n: Node) => void} visit */
function walk(node, visit) {
  visit(node);
  for (const child of node.children) walk(child, visit);
}

/** Outermost ERROR nodes and MISSING tokens outside them: one finding per broken spot, not per nested node. @param {Node} root */
function syntaxFindings(root) {
  /** @type {Finding[]} */
  const out = [];
  const visit = (node) => {
    if (node.isError) {
      out.push(at(node, 'syntax', `cannot parse: ${JSON.stringify(node.text.split('\n')[0]?.slice(0, 40))}`));
      return;
    }
    if (node.isMissing) {
      out.push(at(node, 'syntax', `missing ${JSON.stringify(node.type)}`));
      return;
    }
    for (const child of node.children) visit(child);
  };
  if (root.hasError) visit(root);
  return out;
}

/** The cmdlet or command a `command` node names literally, or null for `& $x`, `. $x` and the like. @param {Node} command */
function commandName(command) {
  const name = command.childForFieldName('command_name');
  if (name?.type !== 'command_name' || name.namedChildCount > 0) return null;
  // A module-qualified name (Microsoft.PowerShell.Utility\Write-Host) is still that cmdlet.
  const m = /^[\w.]+\\([\w-]+)$/.exec(name.text);
  return { node: name, text: m?.[1] ?? name.text };
}

/** @param {Node} command @param {Node} nameNode @param {string} lower the cmdlet it runs, lower-cased @returns {Finding[]} */
function commandFindings(command, nameNode, lower) {
  /** @type {Finding[]} */
  const out = [];
  if (lower === 'write-host') {
    // Under `powershell.exe -File` with stdout redirected, host output lands on stdout and corrupts the JSON.
    out.push(at(nameNode, 'PSAvoidUsingWriteHost', 'Write-Host writes to the host, which is the probe\'s stdout; emit data only through the final ConvertTo-Json'));
  }
  if (lower === 'invoke-expression') {
    out.push(at(nameNode, 'PSAvoidUsingInvokeExpression', 'Invoke-Expression runs text as code; call the command directly'));
  }
  if (WMI_CMDLETS.has(lower)) {
    out.push(at(nameNode, 'PSAvoidUsingWMICmdlet', 'WMI cmdlets are deprecated and missing from PowerShell 7; use Get-CimInstance / Invoke-CimMethod'));
  }
  if (FORMATTED_TEXT.has(lower)) {
    out.push(at(nameNode, 'VigilAvoidFormattedText', 'the formatting system produces localized, width-cut text; pass raw values (or -join native output lines)'));
  }
  if (lower === 'convertto-json') {
    const elements = command.childForFieldName('command_elements');
    const params = elements ? elements.namedChildren.filter((c) => c.type === 'command_parameter') : [];
    if (!params.some((p) => /^-depth:?$/i.test(p.text))) {
      out.push(at(nameNode, 'VigilConvertToJsonDepth', 'ConvertTo-Json needs an explicit -Depth: the default (2) silently flattens deeper objects to strings'));
    }
  }
  return out;
}

/** The value of `$ErrorActionPreference = ...` when the statement is one, else null. @param {Node} statement */
function errorActionAssignment(statement) {
  if (statement.type !== 'pipeline') return null;
  const assign = statement.namedChildren.find((c) => c.type === 'assignment_expression');
  const left = assign?.namedChildren.find((c) => c.type === 'left_assignment_expression');
  if (!assign || !left) return null;
  const variables = left.descendantsOfType('variable');
  if (variables.length !== 1 || !/^\$((global|script):)?ErrorActionPreference$/i.test(variables[0]?.text ?? '')) return null;
  return assign.childForFieldName('value') ?? assign.namedChildren.at(-1) ?? null;
}

/** `$ErrorActionPreference = 'Stop'` among the script's own top-level statements (not inside a function). @param {Node} root */
function errorActionFindings(root) {
  const statements = root.namedChildren.find((c) => c.type === 'statement_list')?.namedChildren ?? [];
  for (const s of statements) {
    const value = errorActionAssignment(s);
    if (!value) continue;
    if (/^(['"])stop\1$/i.test(value.text.trim()) || /::stop$/i.test(value.text.trim())) return [];
    // Non-terminating errors would then skip the sections' catch blocks and leave half-filled JSON.
    return [at(s, 'VigilErrorActionPreference', `$ErrorActionPreference must be 'Stop', not ${value.text.trim()}`)];
  }
  return [at(root, 'VigilErrorActionPreference', "set $ErrorActionPreference = 'Stop' at the top level, so every failure reaches a catch")];
}

/** Every finding in one script's source text, sorted by position. @param {Parser} parser @param {string} text */
function lintSource(parser, text) {
  const tree = parser.parse(text);
  if (!tree) throw new Error('tree-sitter returned no tree');
  try {
    const root = tree.rootNode;
    /** @type {Finding[]} */
    const out = [...syntaxFindings(root), ...errorActionFindings(root)];
    walk(root, (node) => {
      if (node.type === 'command') {
        const name = commandName(node);
        if (!name) return;
        let lower = name.text.toLowerCase();
        const target = ALIASES.get(lower);
        if (target) {
          out.push(at(name.node, 'PSAvoidUsingCmdletAliases', `'${name.text}' is an alias of ${target}; use the full name`));
          lower = target.toLowerCase();
        }
        out.push(...commandFindings(node, name.node, lower));
      } else if (node.type === 'catch_clause') {
        const block = node.namedChildren.find((c) => c.type === 'statement_block');
        if (block && !block.namedChildren.some((c) => c.type === 'statement_list')) {
          out.push(at(node, 'PSAvoidUsingEmptyCatchBlock', 'an empty catch hides the failure; record it (e.g. its CategoryInfo.Category) or let it propagate'));
        }
      }
    });
    return out.sort((a, b) => a.line - b.line || a.col - b.col);
  } finally {
    tree.delete();
  }
}

/** @param {string[]} args files or directories @returns {string[]} the .ps1 files they name */
function scriptsIn(args) {
  return args.flatMap((a) => {
    const p = resolve(a);
    if (!statSync(p).isDirectory()) return [p];
    return readdirSync(p, { recursive: true, encoding: 'utf8' }).filter((f) => f.toLowerCase().endsWith('.ps1')).sort().map((f) => join(p, f));
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const files = scriptsIn(args.length > 0 ? args : [join(ROOT, 'native-scripts', 'windows')]);
  if (files.length === 0) {
    console.error(`powershell lint: no .ps1 files in ${args.join(' ') || 'native-scripts/windows'}`);
    process.exit(2);
  }
  // V8 optimises the grammar's 1 MB of wasm in background threads and node waits for them at exit: about
  // 20 s on the CI box for a job the baseline compiler finishes in 0.3 s. Set here, before the first wasm
  // compile, so every caller (npm run lint, the tests, a developer) gets it without a node flag.
  setFlagsFromString('--liftoff-only');
  await Parser.init();
  const require = createRequire(import.meta.url);
  const language = await Language.load(require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm'));
  const parser = new Parser();
  parser.setLanguage(language);
  let count = 0;
  for (const file of files) {
    const name = relative(process.cwd(), file) || file;
    for (const f of lintSource(parser, readFileSync(file, 'utf8'))) {
      console.log(`${name}:${f.line}:${f.col} ${f.rule} ${f.message}`);
      count++;
    }
  }
  console.log(`powershell lint (tree-sitter): ${files.length} file(s), ${count} finding(s)`);
  process.exit(count > 0 ? 1 : 0);
}
