import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import winston from 'winston';
import { redact } from './redact.js';

import { LOG_LEVELS, type LogLevel } from './levels.js';

export type Logger = winston.Logger;

/** Applied first in every pipeline: nothing downstream ever sees an unredacted record. */
const redactFormat = winston.format((info) => {
  const clean = redact({ ...info }) as Record<string, unknown>;
  for (const key of Object.keys(info)) {
    if (typeof key === 'string') (info as Record<string, unknown>)[key] = clean[key];
  }
  return info;
});

const human = winston.format.printf((info) => {
  const { level, message, component, timestamp: _t, ...rest } = info as Record<string, unknown>;
  const extra = Object.entries(rest)
    .filter(([k]) => typeof k === 'string')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const prefix = typeof component === 'string' ? `${component}: ` : '';
  return `vigil ${String(level)}: ${prefix}${String(message)}${extra ? ` (${extra})` : ''}`;
});

export interface LoggerOptions {
  level: LogLevel;
  /** Human-readable lines on stderr (the CLI). */
  console: boolean;
  /** JSON lines with size-based rotation (the daemon). */
  file?: { dir: string; maxBytes?: number; maxFiles?: number };
}

export function createLogger(opts: LoggerOptions): Logger {
  type Transport = InstanceType<typeof winston.transports.Console> | InstanceType<typeof winston.transports.File>;
  const transports: Transport[] = [];
  if (opts.console) {
    transports.push(
      new winston.transports.Console({
        stderrLevels: [...LOG_LEVELS],
        format: winston.format.combine(redactFormat(), human),
      }),
    );
  }
  if (opts.file) {
    mkdirSync(opts.file.dir, { recursive: true, mode: 0o700 });
    transports.push(
      new winston.transports.File({
        filename: join(opts.file.dir, 'vigil.log'),
        maxsize: opts.file.maxBytes ?? 5 * 1024 * 1024,
        maxFiles: opts.file.maxFiles ?? 5,
        tailable: true,
        format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json()),
      }),
    );
  }
  // winston warns about a logger without transports; a silent logger is a legitimate choice here.
  // The rule misreads winston's typings: Console and File do extend TransportStream.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
  return winston.createLogger({ level: opts.level, transports, silent: transports.length === 0 });
}

/** For library code and tests that must not print. */
export function silentLogger(): Logger {
  return createLogger({ level: 'error', console: false });
}
