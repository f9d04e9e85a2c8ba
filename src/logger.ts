import { pino, type DestinationStream, type Logger } from 'pino';

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
          '*.code',
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
