import { AppError } from '../errors.js';

/**
 * A store (SQLite, PostgreSQL or Redis) could not be reached or did not answer in time. It is one error kind whatever the backend, and it is an AppError with
 * status 503, so the error page shows "try again in a moment" rather than a 500, and the site
 * carries on: the next request tries the store again.
 */
export class StoreUnavailableError extends AppError {
  constructor(store: string, cause: unknown) {
    super(
      503,
      'The site cannot reach its data right now. Nothing you saved is lost; please try again in a moment.',
      // Outages of a store are mostly short: a browser or client that honours it comes back soon.
      { cause, retryAfterSeconds: 5 },
    );
    // The page shows the safe message; the log (which prints `err`) shows which store failed and why.
    this.message = `${store} unavailable: ${cause instanceof Error ? cause.message : String(cause)}`;
  }
}
