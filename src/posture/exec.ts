import { execFile } from 'node:child_process';

export interface ExecResult {
  /** Exit code; null when the process was killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Upper bound on captured output, so a runaway tool cannot exhaust memory. */
  maxBuffer?: number;
}

export class CommandNotFoundError extends Error {
  constructor(readonly command: string) {
    super(`${command}: command not found`);
    this.name = 'CommandNotFoundError';
  }
}

/**
 * Runs a program without a shell (no quoting bugs, no injection) and resolves with its exit status, even a
 * non-zero one: callers decide what an exit code means. Rejects only when the program is missing, times
 * out or is aborted.
 */
export function run(command: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        encoding: 'utf8',
        timeout: opts.timeoutMs ?? 5000,
        maxBuffer: opts.maxBuffer ?? 8 * 1024 * 1024,
        env: { ...(opts.env ?? process.env), LC_ALL: 'C', LANG: 'C' },
        signal: opts.signal,
        windowsHide: true,
      },
      (err, stdout, stderr) => {
        if (err) {
          const e: Error & { code?: unknown; killed?: boolean } = err;
          if (e.code === 'ENOENT') {
            reject(new CommandNotFoundError(command));
            return;
          }
          if (e.name === 'AbortError' || e.killed === true || typeof e.code !== 'number') {
            reject(e);
            return;
          }
          resolve({ code: e.code, stdout, stderr });
          return;
        }
        resolve({ code: 0, stdout, stderr });
      },
    );
  });
}
