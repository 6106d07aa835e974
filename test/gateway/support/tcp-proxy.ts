/**
 * A transparent TCP proxy in front of a real gateway, for what a real gateway cannot be made
 * to do: lose an answer. `cutAfterNextRequest()` lets the next client→gateway bytes through,
 * half-closes the gateway side after them and destroys the client side, so the gateway
 * receives (and applies) the request while its answer has nowhere to go.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export class TcpProxy {
  private armed = false;
  /** Client→gateway writes cut so far. */
  cuts = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server);
    server.on('connection', (downstream: Socket) => {
      const upstream = connect(targetPort, targetHost);
      proxy.track(downstream);
      proxy.track(upstream);
      downstream.on('data', (chunk: Buffer) => {
        upstream.write(chunk);
        if (proxy.armed) {
          proxy.armed = false;
          proxy.cuts += 1;
          upstream.end(); // the request reaches the gateway, then EOF
          downstream.destroy(); // the answer has nowhere to go
        }
      });
      upstream.on('data', (chunk: Buffer) => {
        if (!downstream.destroyed) downstream.write(chunk);
      });
      downstream.on('close', () => upstream.end());
      upstream.on('close', () => downstream.destroy());
      downstream.on('error', () => undefined);
      upstream.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  cutAfterNextRequest(): void {
    this.armed = true;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }
}
