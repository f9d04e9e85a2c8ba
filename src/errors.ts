/**
 * Failures that stop a request. Each carries the HTTP status, the error view to render and a
 * message that is safe to show. Expected outcomes (a wrong code) are values, not errors.
 */
export class AppError extends Error {
  readonly status: number;
  readonly view: string;
  readonly safeMessage: string;
  readonly retryAfterSeconds?: number;
  /** Where the person can go next (a link on the error page). */
  readonly nextStep?: { href: string; label: string };
  /** A sentence on what to do, replacing the error page's generic one ('' for none). */
  readonly advice?: string;
  /**
   * Whoever threw it has told the operator already (once, not at every request that meets it):
   * the error handlers answer it without logging it again.
   */
  readonly alreadyLogged: boolean;

  constructor(
    status: number,
    safeMessage: string,
    options: {
      retryAfterSeconds?: number;
      nextStep?: { href: string; label: string };
      advice?: string;
      alreadyLogged?: boolean;
      cause?: unknown;
    } = {},
  ) {
    super(safeMessage, { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.view = `errors/${status}`;
    this.safeMessage = safeMessage;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.nextStep = options.nextStep;
    this.advice = options.advice;
    this.alreadyLogged = options.alreadyLogged ?? false;
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'You do not have access to this page.', nextStep?: { href: string; label: string }) {
    super(403, message, { nextStep });
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'There is no page at this address.') {
    super(404, message);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(message: string, retryAfterSeconds: number, nextStep?: { href: string; label: string }) {
    super(429, message, { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterSeconds)), nextStep });
  }
}

/** "3 minutes", "45 seconds": for telling a person how long to wait. */
export function describeWait(seconds: number): string {
  const whole = Math.max(1, Math.ceil(seconds));
  if (whole < 60) return `${whole} second${whole === 1 ? '' : 's'}`;
  const minutes = Math.ceil(whole / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}
