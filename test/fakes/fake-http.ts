import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the provider fakes share: a loopback server on port 0, a request log without credentials,
 * forced failure modes (once or until changed), and a close() that does not wait for hung sockets.
 */

export type FailureMode = 'ok' | 400 | 401 | 403 | 429 | 500 | 503 | 'garbage' | 'hang';

/** The modes a fake answers in its own way; 'ok', 'hang' and 'garbage' are handled here. */
export type ForcedMode<M> = Exclude<M, 'ok' | 'hang' | 'garbage'>;

export interface LoggedRequest {
  method: string;
  path: string;
  /** 'basic', 'bearer' or 'none'; never the credentials themselves. */
  auth: string;
  /** The parsed body: form fields as an object, JSON as parsed, or the raw text. */
  body: unknown;
  /** The status answered; undefined while a request hangs. */
  status?: number;
}

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  log: LoggedRequest;
  raw: string;
  json(status: number, body: unknown, headers?: Record<string, string>): void;
  empty(status: number): void;
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function isForm(req: IncomingMessage): boolean {
  return /^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '');
}

export function isJson(req: IncomingMessage): boolean {
  return /^application\/json\b/i.test(req.headers['content-type'] ?? '');
}

function parseBody(req: IncomingMessage, raw: string): unknown {
  if (raw === '') return undefined;
  if (isForm(req)) return Object.fromEntries(new URLSearchParams(raw));
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export function basicHeader(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** What every fake offers its tests: the request log, forced failures and close(). */
export interface FakeControls<M = FailureMode> {
  requests: LoggedRequest[];
  /** Answer only the next request this way, then go back to the current mode. */
  failNext(mode: M, options?: { retryAfter?: string }): void;
  /** Answer every request this way until changed ('ok' is normal behaviour). */
  setMode(mode: M): void;
  close(): Promise<void>;
}

export interface FakeServer<M = FailureMode> extends FakeControls<M> {
  /** http://127.0.0.1:PORT */
  origin: string;
}

/** A fake's clock: the real time unless given one, and replaceable by a test (setClock). */
export function fakeClock(initial?: () => Date) {
  let current = initial ?? (() => new Date());
  return {
    now: () => current(),
    setClock(now: () => Date) {
      current = now;
    },
  };
}

/**
 * Starts a server whose handler receives each request with its body read and logged. A forced
 * mode ('hang', 'garbage', or any other answered in the provider's own shape by `fail`, with a
 * retry-after header when one was asked for) is applied before the handler runs.
 */
export async function startFakeServer<M extends string | number = FailureMode>(
  handler: (exchange: Exchange) => void | Promise<void>,
  options: {
    fail: (exchange: Exchange, mode: ForcedMode<M>, retryAfterHeaders: Record<string, string>) => void;
    /** The body answered when the handler throws; '{}' unless given. */
    crashBody?: () => string;
  },
): Promise<FakeServer<M>> {
  const requests: LoggedRequest[] = [];
  let mode: M | 'ok' = 'ok';
  let once: { mode: M | 'ok'; retryAfter?: string } | undefined;

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const raw = await readBody(req);
    const log: LoggedRequest = {
      method: req.method ?? '',
      path: new URL(req.url ?? '/', 'http://fake').pathname,
      auth: req.headers.authorization?.split(' ')[0]?.toLowerCase() ?? 'none',
      body: parseBody(req, raw),
    };
    requests.push(log);
    const exchange: Exchange = {
      req,
      res,
      log,
      raw,
      json(status, body, headers = {}) {
        log.status = status;
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      },
      empty(status) {
        log.status = status;
        res.writeHead(status);
        res.end();
      },
    };

    const forced = once ?? { mode };
    once = undefined;
    switch (forced.mode) {
      case 'ok':
        return handler(exchange);
      case 'hang':
        return; // never answer; close() destroys the socket
      case 'garbage':
        log.status = 200;
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<html><body>502 Bad Gateway</body></html>');
      default: {
        const { retryAfter } = forced;
        return options.fail(
          exchange,
          forced.mode as ForcedMode<M>,
          retryAfter !== undefined ? { 'retry-after': retryAfter } : {},
        );
      }
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(options.crashBody?.() ?? '{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    requests,
    failNext(next, { retryAfter } = {}) {
      once = { mode: next, retryAfter };
    },
    setMode(next) {
      mode = next;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Hung requests and keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}
