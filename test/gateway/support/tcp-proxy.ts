/**
 * A transparent TCP proxy in front of a real gateway, for what a real gateway cannot be made
 * to do: lose an answer. `cutAfter(method)` reads the client's WebSocket frames and, once a
 * request frame for that method has passed in full, half-closes the gateway side after it and
 * destroys the client side: the gateway receives (and applies) exactly that request while its
 * answer has nowhere to go. Any other bytes (the upgrade, the handshake, other requests) pass
 * as they are. Listens on loopback and connects to the target given (a loopback gateway).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** One complete client→server frame at the start of `buffer`: its length and text, or null. */
function nextFrame(buffer: Buffer): { length: number; text: string | null } | null {
  if (buffer.length < 2) return null;
  const opcode = buffer[0] & 0x0f;
  const masked = (buffer[1] & 0x80) !== 0;
  let payloadLength = buffer[1] & 0x7f;
  let offset = 2;
  if (payloadLength === 126) {
    if (buffer.length < 4) return null;
    payloadLength = buffer.readUInt16BE(2);
    offset = 4;
  } else if (payloadLength === 127) {
    if (buffer.length < 10) return null;
    payloadLength = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  const maskAt = offset;
  if (masked) offset += 4;
  const length = offset + payloadLength;
  if (buffer.length < length) return null;
  if (opcode !== 1) return { length, text: null };
  const payload = Buffer.from(buffer.subarray(offset, length));
  if (masked) {
    for (let index = 0; index < payload.length; index += 1) {
      payload[index] ^= buffer[maskAt + (index % 4)];
    }
  }
  return { length, text: payload.toString('utf8') };
}

function methodOf(text: string | null): string | null {
  if (text === null) return null;
  try {
    const frame = JSON.parse(text) as { type?: unknown; method?: unknown };
    return frame.type === 'req' && typeof frame.method === 'string' ? frame.method : null;
  } catch {
    return null;
  }
}

export class TcpProxy {
  /** The request method whose frame ends the next cut, while armed. */
  private cutMethod: string | null = null;
  /** Requests cut so far. */
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
      let upgraded = false;
      let pending = Buffer.alloc(0);
      downstream.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        if (!upgraded) {
          const end = pending.indexOf('\r\n\r\n');
          if (end < 0) return;
          upstream.write(pending.subarray(0, end + 4));
          pending = pending.subarray(end + 4);
          upgraded = true;
        }
        // Whole frames only, so a cut lands exactly after the frame it waits for.
        for (let frame = nextFrame(pending); frame; frame = nextFrame(pending)) {
          upstream.write(pending.subarray(0, frame.length));
          pending = pending.subarray(frame.length);
          if (proxy.cutMethod !== null && methodOf(frame.text) === proxy.cutMethod) {
            proxy.cutMethod = null;
            proxy.cuts += 1;
            upstream.end(); // the request reaches the gateway, then EOF
            downstream.destroy(); // the answer has nowhere to go
            return;
          }
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

  /** Cuts the connection right after the next request frame for `method` has passed. */
  cutAfter(method: string): void {
    this.cutMethod = method;
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
