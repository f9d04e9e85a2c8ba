import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

/**
 * JSON logs for the operator. Handlers never log bodies; the redaction below is the second line
 * of defence in case a password, code, phone number or cookie reaches a log call anyway.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: {
        paths: [
          'password',
          'code',
          'phone',
          'to',
          '*.password',
          // Not '*.code': err.code (SQLITE_BUSY, ECONNREFUSED) is what an operator needs to see.
          'body.code',
          'form.code',
          '*.phone',
          '*.to',
          'req.headers.cookie',
          'req.headers.authorization',
          'res.headers["set-cookie"]',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/**
 * For a person at a terminal during development: one readable line per entry instead of JSON, so
 * the console provider's "SMS to ..." lines stand out. Servers and pipes get JSON.
 */
export function createTerminalLogger(level: string, options: { pretty: boolean }): Logger {
  if (!options.pretty) return createLogger(level);
  // Loaded only for a terminal: servers never pay for it at start (issue 10).
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return createLogger(
    level,
    pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', singleLine: true }),
  );
}
