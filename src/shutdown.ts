import { INestApplication, Logger } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import type { Server } from 'node:http';
import {
  ChangeStreamHub,
  type StreamClient,
  type StreamEvent,
} from './change-log/change-stream.hub';
import type { AppConfig } from './config/app-config';

/**
 * Requests of one app instance that have not finished yet (streams included), so a shutdown
 * can wait for them. One per app (an instance's own state: nothing another instance needs).
 */
export class InFlightRequests {
  private count = 0;
  private closing = false;
  private readonly idleWaiters = new Set<() => void>();

  get size(): number {
    return this.count;
  }

  /** Express middleware: counts a request until its response finishes or its connection closes. */
  readonly middleware = (_req: Request, res: Response, next: NextFunction): void => {
    this.count++;
    let done = false;
    const finished = (): void => {
      if (done) return;
      done = true;
      this.count--;
      if (this.count === 0) for (const wake of this.idleWaiters) wake();
    };
    // 'close' comes last in every case: after 'finish', or alone when the connection dropped.
    res.once('close', finished);
    // A keep-alive client must not send its next request to an instance that is going away.
    if (this.closing) res.setHeader('Connection', 'close');
    next();
  };

  /** From now on every response asks its client to close the connection. */
  beginClosing(): void {
    this.closing = true;
  }

  /** Resolves true once no request is in flight, false when `timeoutMs` passed first. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(wake);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(wake);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      this.idleWaiters.add(wake);
    });
  }
}

const IN_FLIGHT = new WeakMap<INestApplication, InFlightRequests>();

/** Counts the app's requests (installed first by createApp) for {@link closeGracefully}. */
export function trackInFlightRequests(app: INestApplication): void {
  const requests = new InFlightRequests();
  IN_FLIGHT.set(app, requests);
  app.use(requests.middleware);
}

/** Every live-stream hub of the app (any provider that is a ChangeStreamHub). */
function streamHubs(app: INestApplication): ChangeStreamHub<StreamClient, StreamEvent>[] {
  const hubs = new Set<ChangeStreamHub<StreamClient, StreamEvent>>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.providers.values()) {
      if (wrapper.instance instanceof ChangeStreamHub) {
        hubs.add(wrapper.instance as ChangeStreamHub<StreamClient, StreamEvent>);
      }
    }
  }
  return [...hubs];
}

/** Stops accepting connections at once; the connections of in-flight requests stay. */
function stopAccepting(server: Server): void {
  if (!server.listening) return;
  // Its callback would wait for every connection: the requests are waited for below, bounded.
  server.close();
  // Idle keep-alive connections carry no request: close them now (Node does too, from 19).
  server.closeIdleConnections();
}

/**
 * Shuts the instance down in the order that loses nothing (SIGTERM/SIGINT, src/main.ts):
 * 1. stop accepting connections (new ones are refused; keep-alive clients are told to close);
 * 2. end every live stream with a `retry:` hint (clients resume elsewhere with Last-Event-ID);
 * 3. wait for the in-flight requests, at most SHUTDOWN_GRACE_MS, then drop what is left;
 * 4. close the app (Nest's lifecycle hooks): background workers and notifiers finish, queued
 *    heartbeats are written, then the gateway sockets, the change-log listener, the provisioning
 *    lock pool and the database pool close.
 * Never rejects on the way; the caller decides the exit code from the returned error, if any.
 */
export async function closeGracefully(app: INestApplication, config: AppConfig): Promise<void> {
  const logger = new Logger('Shutdown');
  const server = app.getHttpServer() as Server;
  const requests = IN_FLIGHT.get(app);
  requests?.beginClosing();
  stopAccepting(server);
  const hubs = streamHubs(app);
  for (const hub of hubs) hub.drain();
  logger.log(
    `Stopped accepting connections; ended the live streams; waiting for ${requests?.size ?? 0} request(s)`,
  );
  const finished = requests ? await requests.idle(config.shutdown.graceMs) : true;
  if (!finished) {
    logger.warn(
      `${requests?.size ?? 0} request(s) still running after SHUTDOWN_GRACE_MS=${config.shutdown.graceMs}: closing their connections`,
    );
  }
  server.closeAllConnections();
  // Nest's hooks close the rest in order: module destroy hooks first (the board chat notifier
  // gets to send what the last requests queued, over the still-open gateway sockets), the
  // heartbeat flush, then the gateway sockets, the listener and the pools.
  await app.close();
  logger.log('Shut down');
}
