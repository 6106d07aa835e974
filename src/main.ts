/**
 * Production entry point (`npm run start:prod`): runs against DATABASE_URL, never an embedded
 * database. Configuration problems are reported and the process exits 1. SIGTERM/SIGINT shut
 * it down gracefully (src/shutdown.ts) and it exits 0.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp, listen } from './bootstrap';
import { ConfigError, loadConfig } from './config/app-config';
import { closeGracefully } from './shutdown';

/** How long the process may take to exit by itself once shut down. */
const EXIT_WATCHDOG_MS = 5_000;
/** How long closing may take after SHUTDOWN_GRACE_MS before the process gives up and exits 1. */
const SHUTDOWN_HARD_LIMIT_MS = 30_000;

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  // Signals are handled here, not by Nest's hooks: Nest closes the modules (gateway sockets,
  // pools) before it stops the listener and kills the process with the signal (exit 143).
  const app = await createApp(config, { shutdownHooks: false });
  let closing = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    const logger = new Logger('Shutdown');
    if (closing) {
      // A second signal is the operator insisting (Ctrl-C twice): stop now.
      logger.warn(`${signal} again while shutting down: exiting now`);
      process.exit(1);
    }
    closing = true;
    logger.log(`${signal}: shutting down`);
    // Bound the whole shutdown, not only the wait for requests: closing pools and hooks waits on
    // the database and the gateways, which may not answer.
    setTimeout(() => {
      logger.error(
        `shutdown still running ${SHUTDOWN_HARD_LIMIT_MS / 1000} s after the grace period: exiting`,
      );
      process.exit(1);
    }, config.shutdown.graceMs + SHUTDOWN_HARD_LIMIT_MS).unref();
    closeGracefully(app, config).then(
      () => {
        // Exit by itself: nothing may still hold the event loop (a socket, a pool, a timer).
        // Something that does is a leak: say so and exit 1 rather than hang.
        process.exitCode = 0;
        setTimeout(() => {
          logger.error('still running after the shutdown (an open handle): exiting');
          process.exit(1);
        }, EXIT_WATCHDOG_MS).unref();
      },
      (error: unknown) => {
        logger.error(`shutdown failed: ${error instanceof Error ? error.stack : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  await listen(app, config);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
