/** Products whose process names (one per line, as ps -c or Get-Process print them) appear in `processes`. */
export function findEdr(processes: string | null, known: Readonly<Record<string, string>>): string[] {
  if (processes === null) return [];
  const running = new Set(processes.split(/\r?\n/).map((p) => p.trim()));
  return [...new Set(Object.entries(known).filter(([name]) => running.has(name)).map(([, product]) => product))].sort();
}
