import type { CollectContext } from '../collector.js';

export interface ProcessInfo {
  pid: number;
  /** /proc/<pid>/comm: the kernel's name for the task, cut to 15 characters. */
  comm: string;
  /** argv from /proc/<pid>/cmdline; empty for kernel threads. */
  argv: string[];
}

/** argv from /proc/<pid>/cmdline: NUL-separated, usually NUL-terminated. */
export function parseCmdline(raw: string): string[] {
  const parts = raw.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

/**
 * Every process visible in /proc, read directly rather than by spawning `ps`: a few hundred small reads cost
 * less than starting a process, and need no particular tool installed. Shared within one scan because the
 * process table can change between scans.
 */
export function listProcesses(ctx: Pick<CollectContext, 'facts' | 'readdir' | 'readFile'>): Promise<ProcessInfo[]> {
  return ctx.facts.scan('linux.processes', async () => {
    const pids = (await ctx.readdir('/proc')).filter((n) => /^\d+$/.test(n));
    const procs = await Promise.all(
      pids.map(async (pid): Promise<ProcessInfo | undefined> => {
        try {
          const [comm, cmdline] = await Promise.all([
            ctx.readFile(`/proc/${pid}/comm`),
            ctx.readFile(`/proc/${pid}/cmdline`),
          ]);
          return { pid: Number(pid), comm: comm.trim(), argv: parseCmdline(cmdline) };
        } catch {
          // The process exited between readdir and read: not an error, it is simply gone.
          return undefined;
        }
      }),
    );
    return procs.filter((p): p is ProcessInfo => p !== undefined);
  });
}
