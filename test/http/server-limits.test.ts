import type { Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVER_LIMITS, createHttpServer } from '../../src/http/server-limits.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';

/** Opens a raw TCP connection; resolves once connected. */
function openSocket(server: Server): Promise<Socket> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

/** What the server wrote before closing the connection, and how long it took to close. */
function untilClosed(socket: Socket): Promise<{ received: string; ms: number }> {
  const startedAt = Date.now();
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  return new Promise((resolve) =>
    socket.on('close', () => resolve({ received, ms: Date.now() - startedAt })),
  );
}

describe('the HTTP server’s limits on slow and greedy clients', () => {
  // Threat: a client that sends its headers a byte at a time (slowloris), or that opens
  // connections by the thousand, would otherwise hold the process's sockets for as long as it likes.
  let site: TestApp | undefined;
  let server: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.length = 0;
    if (server?.listening) await new Promise((resolve) => server!.close(resolve));
    server = undefined;
    await site?.close();
    site = undefined;
  });

  async function listen(limits = SERVER_LIMITS, isTrustedProxy?: (address: string) => boolean) {
    site = await createTestApp();
    server = createHttpServer(site.app, limits, { isTrustedProxy });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return server;
  }

  it('waits 10 s for headers, 30 s for a whole request, keeps idle connections 5 s and takes 10,000 at once, 64 per client', async () => {
    const running = await listen();
    expect(running.headersTimeout).toBe(10_000);
    expect(running.requestTimeout).toBe(30_000);
    expect(running.keepAliveTimeout).toBe(5_000);
    expect(running.maxConnections).toBe(10_000);
    expect(SERVER_LIMITS.maxConnectionsPerClient).toBe(64);
  });

  it('answers 408 and closes a connection whose headers never finish', async () => {
    const running = await listen({
      ...SERVER_LIMITS,
      headersTimeoutMs: 300,
      requestTimeoutMs: 600,
      connectionsCheckingIntervalMs: 50,
    });
    const socket = await openSocket(running);
    sockets.push(socket);
    const closed = untilClosed(socket);
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: a');

    const { received, ms } = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeLessThan(3000);
  });

  it('closes connections beyond the cap as they arrive, and serves the others', async () => {
    const running = await listen({ ...SERVER_LIMITS, maxConnections: 2 });
    sockets.push(await openSocket(running), await openSocket(running));

    const extra = await openSocket(running);
    sockets.push(extra);
    const { received } = await untilClosed(extra);
    expect(received).toBe('');

    const [first] = sockets;
    const answered = untilClosed(first!);
    first!.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect((await answered).received).toMatch(/^HTTP\/1\.1 200 /);
  });
  it('closes a client’s connections beyond its own cap, so one client cannot take them all', async () => {
    // Threat: slowloris from one address filling the global cap and shutting everyone else out.
    const running = await listen({ ...SERVER_LIMITS, maxConnectionsPerClient: 3 });
    for (let i = 0; i < 3; i += 1) sockets.push(await openSocket(running));

    const extra = await openSocket(running);
    sockets.push(extra);
    expect((await untilClosed(extra)).received).toBe('');

    // A closed connection gives its place back.
    const first = sockets.shift()!;
    const gone = untilClosed(first);
    first.destroy();
    await gone;
    const again = await openSocket(running);
    sockets.push(again);
    again.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect((await untilClosed(again)).received).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('does not count the connections of a trusted proxy against a per-client cap', async () => {
    const running = await listen({ ...SERVER_LIMITS, maxConnectionsPerClient: 2 }, () => true);
    for (let i = 0; i < 4; i += 1) sockets.push(await openSocket(running));
    const last = sockets[3]!;
    last.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect((await untilClosed(last)).received).toMatch(/^HTTP\/1\.1 200 /);
  });
});
