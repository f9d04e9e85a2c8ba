import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The code provider the benchmarked site talks to: SignalWire's Compatibility API, on loopback,
 * answering every message and call with a sid. SignalWire only delivers, so the site makes,
 * hashes and checks its codes itself, and a wrong code costs the site's own work rather than a
 * round trip to a provider (as it would with Bandwidth or Twilio Verify, which check codes
 * themselves). The benchmark reads each code from the newest message to its number.
 */
export interface FakeSignalWire {
  baseUrl: string;
  /** The digits of the newest SMS sent to this number, if any. */
  lastCodeFor(to: string): string | undefined;
  /** Drops what was sent to this number, so that the next code read is a new one. */
  forget(to: string): void;
  messagesSent(): number;
  close(): Promise<void>;
}

const ROUTE = /^\/api\/laml\/2010-04-01\/Accounts\/[^/]+\/(Calls|Messages)(?:\.json)?$/;

export async function startFakeSignalWire(): Promise<FakeSignalWire> {
  const lastBodyTo = new Map<string, string>();
  let sent = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || !ROUTE.test(new URL(req.url ?? '/', 'http://fake').pathname)) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":20404,"status":404}');
        return;
      }
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const to = form.get('To') ?? '';
      const body = form.get('Body');
      if (body !== null) lastBodyTo.set(to, body);
      sent += 1;
      res
        .writeHead(201, { 'content-type': 'application/json' })
        .end(JSON.stringify({ sid: `SM${randomUUID().replaceAll('-', '')}`, to, status: 'queued' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    // The SMS ends with the WebOTP line "@host #123456".
    lastCodeFor: (to) => /#(\d{4,8})\s*$/.exec(lastBodyTo.get(to) ?? '')?.[1],
    forget: (to) => void lastBodyTo.delete(to),
    messagesSent: () => sent,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
