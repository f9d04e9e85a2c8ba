import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a real service, so a test can make the service go away, come
 * back on the same port, or stop answering, without touching the service itself (which other
 * tests share).
 */
export interface TcpProxy {
  readonly port: number;
  /** The service goes away: the port stops listening and every open connection is cut. */
  stop(): Promise<void>;
  /** The service comes back on the same port. */
  start(): Promise<void>;
  /**
   * The service stops answering: connections, open and new, stay open but nothing is passed
   * either way (a paused VM, a host gone from the network without closing anything).
   */
  freeze(): void;
  /**
   * Only the connections open now stop answering; new ones work (a failover that left the old
   * connections to a host that is gone, while the address now reaches a healthy one).
   */
  freezeOpenConnections(): void;
  /** Everything held is passed on, in order, as a service that was paused would. */
  thaw(): void;
  close(): Promise<void>;
}

/** One direction of one connection: bytes are held instead of passed while it is frozen. */
interface Pipe {
  frozen: boolean;
  held: Buffer[];
  to: Socket;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const pipes = new Set<Pipe>();
  let freezeNew = false;

  const forward = (from: Socket, to: Socket) => {
    const pipe: Pipe = { frozen: freezeNew, held: [], to };
    pipes.add(pipe);
    from.on('data', (chunk: Buffer) => (pipe.frozen ? pipe.held.push(chunk) : to.write(chunk)));
    from.on('close', () => pipes.delete(pipe));
  };
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  const server = createServer((client) => {
    const upstream = connect(target);
    track(client);
    track(upstream);
    forward(client, upstream);
    forward(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });

  await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    stop,
    start: () => listen(port),
    freeze() {
      freezeNew = true;
      for (const pipe of pipes) pipe.frozen = true;
    },
    freezeOpenConnections() {
      for (const pipe of pipes) pipe.frozen = true;
    },
    thaw() {
      freezeNew = false;
      for (const pipe of pipes) {
        pipe.frozen = false;
        for (const chunk of pipe.held.splice(0)) pipe.to.write(chunk);
      }
    },
    close: stop,
  };
}

/** A loopback port where nothing listens (one that was just free). */
export async function findClosedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
