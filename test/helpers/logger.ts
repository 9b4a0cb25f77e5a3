import winston from 'winston';

/** A debug-level logger that prints nothing and keeps every record: `lines` as "level message", and `records` whole. */
export function capturingLogger(): { logger: winston.Logger; lines: string[]; records: Record<string, unknown>[] } {
  const lines: string[] = [];
  const records: Record<string, unknown>[] = [];
  // Same typing quirk as src/logging/logger.ts: Console does extend TransportStream.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
  const logger = winston.createLogger({ level: 'debug', transports: [new winston.transports.Console({ silent: true })] });
  logger.on('data', (info: { level: string; message?: unknown }) => {
    lines.push(`${info.level} ${String(info.message)}`);
    records.push(info);
  });
  return { logger, lines, records };
}
