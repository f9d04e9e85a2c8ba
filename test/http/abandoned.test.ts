import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Request, Response } from 'express';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { abandonmentSignal } from '../../src/http/abandoned.js';

/** abandonmentSignal (src/http/abandoned.ts): "the client gave up on this request". */

let server: Server;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** A server whose handler makes each request's signal, and answers it only when told. */
async function listen() {
  const seen: Array<{ signal: AbortSignal; res: ServerResponse; req: IncomingMessage }> = [];
  server = createServer((req, res) => {
    seen.push({ req, res, signal: abandonmentSignal(req as Request, res as Response) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = connect(port, '127.0.0.1');
  sockets.push(client);
  await new Promise((resolve) => client.once('connect', resolve));
  return { seen, client };
}

const post = (body: string) =>
  `POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

describe('the signal that a request was abandoned', () => {
  it('aborts when the client hangs up before the answer, pipelined requests included', async () => {
    const { seen, client } = await listen();
    client.write(post('one') + post('two'));
    await vi.waitFor(() => expect(seen).toHaveLength(2));
    expect(seen.map(({ signal }) => signal.aborted)).toEqual([false, false]);
    client.destroy();
    await vi.waitFor(() => expect(seen.map(({ signal }) => signal.aborted)).toEqual([true, true]));
  });

  it('never aborts once the answer went out, even when the connection closes after it', async () => {
    const { seen, client } = await listen();
    client.write(post('one'));
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    const answered = new Promise((resolve) => client.once('data', resolve));
    seen[0]!.res.end('done');
    await answered;
    client.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen[0]!.signal.aborted).toBe(false);
  });

  it('leaves no listener behind on a keep-alive connection once each answer went out', async () => {
    const { seen, client } = await listen();
    for (let i = 0; i < 20; i += 1) {
      const answered = new Promise((resolve) => client.once('data', resolve));
      client.write(post(`n${i}`));
      await vi.waitFor(() => expect(seen).toHaveLength(i + 1));
      seen[i]!.res.end('done');
      await answered;
    }
    const socket = seen[0]!.req.socket;
    expect(socket.listenerCount('close')).toBeLessThan(5);
  });
});
