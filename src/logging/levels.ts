// Apart from the logger so that config schemas and CLI flags can name the levels without loading winston.
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
