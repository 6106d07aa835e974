import { INestApplication, LogLevel, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express, { NextFunction, Request, Response } from 'express';
import { AppModule, ModuleImport } from './app.module';
import { SECURITY_SCHEMES } from './auth/decorators/access.decorators';
import { AGENT_TOKEN_HEADER } from './auth/credentials';
import { AppConfig } from './config/app-config';
import { RequestValidationError } from './common/errors/app-error';
import { AllExceptionsFilter } from './common/filters/all-exceptions.filter';
import { sendErrorEnvelope } from './common/filters/error-envelope';
import { GatewayExceptionFilter } from './common/filters/gateway-exception.filter';
import { REQUEST_ID_HEADER, requestIdMiddleware } from './common/http/request-id.middleware';
import { rejectUnsafeInput } from './common/http/unsafe-input.middleware';
import { RequestValidationPipe } from './common/validation/request-validation.pipe';
import { trackInFlightRequests } from './shutdown';

export const API_PREFIX = 'api/v1';
const PROBES = ['health', 'healthz', 'readyz'];
const BODY_LIMIT = '1mb';

const LOG_LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

function logLevelsFrom(level: AppConfig['logLevel']): LogLevel[] {
  return LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(level) + 1);
}

/**
 * Upstream answers 200 to every successful request, POST included, and its frontend checks for
 * exactly 200. Nest defaults POST to 201; this keeps every route on 200 without relying on each
 * handler remembering `@HttpCode(200)`. Patched once on this app's response prototype (Express
 * gives each app its own), not wrapped per request.
 */
function successIsAlways200(app: NestExpressApplication): void {
  const { response } = app.getHttpAdapter().getInstance();
  const { status } = Object.getPrototypeOf(response) as {
    status: (this: Response, code: number) => Response;
  };
  response.status = function successIs200(this: Response, code: number) {
    return status.call(this, code === 201 ? 200 : code);
  };
}

/** Malformed JSON, a wrong content type or an oversized body: a 422/413 envelope, not Express's HTML. */
function bodyParseErrors(error: unknown, req: Request, res: Response, next: NextFunction): void {
  const parseError = error as { type?: string; status?: number; message?: string };
  if (parseError?.type === 'entity.parse.failed') {
    const issue = new RequestValidationError([
      {
        type: 'json_invalid',
        loc: ['body'],
        msg: 'JSON decode error',
        ctx: { error: parseError.message },
      },
    ]);
    sendErrorEnvelope(req, res, 422, issue.issues);
    return;
  }
  if (parseError?.type === 'entity.too.large') {
    sendErrorEnvelope(req, res, 413);
    return;
  }
  if (
    typeof parseError?.status === 'number' &&
    parseError.status >= 400 &&
    parseError.status < 500
  ) {
    sendErrorEnvelope(req, res, parseError.status);
    return;
  }
  next(error);
}

export function buildOpenApiDocument(app: INestApplication) {
  const config = new DocumentBuilder()
    .setTitle('Mission Control API')
    .setDescription(
      'Control plane for fleets of OpenClaw agents. Users authenticate with `Authorization: Bearer`; ' +
        `agents with \`${AGENT_TOKEN_HEADER}\` (or a bearer agent token on /api/v1/agent routes).`,
    )
    .setVersion('0.1.0')
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'User token (local or JWT)' },
      SECURITY_SCHEMES.USER_BEARER,
    )
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'Agent token' },
      SECURITY_SCHEMES.AGENT_BEARER,
    )
    .addApiKey(
      { type: 'apiKey', in: 'header', name: AGENT_TOKEN_HEADER },
      SECURITY_SCHEMES.AGENT_TOKEN,
    )
    .build();
  return SwaggerModule.createDocument(app, config);
}

export interface CreateAppOptions {
  /** Extra modules mounted beside the application's own (tests mount probe controllers). */
  imports?: ModuleImport[];
  /** Let Nest close the app on SIGTERM/SIGINT (default). `npm start` handles signals itself. */
  shutdownHooks?: boolean;
}

/** Builds the application with every cross-cutting piece; `listen` is left to the caller. */
export async function createApp(
  config: AppConfig,
  options: CreateAppOptions = {},
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot(config, options.imports),
    {
      bodyParser: false,
      logger: logLevelsFrom(config.logLevel),
    },
  );
  app.disable('x-powered-by');
  // No ETag: Express would hash every response body (a SHA-1 of a 500 KB board snapshot) for
  // conditional requests no client of this API makes; upstream sends none either.
  app.set('etag', false);
  // First: a graceful shutdown (src/shutdown.ts) waits for every request this counts.
  trackInFlightRequests(app);
  app.set('query parser', 'simple');
  app.use(requestIdMiddleware);
  successIsAlways200(app);
  app.use(express.json({ limit: BODY_LIMIT }));
  app.use(bodyParseErrors);
  app.use(rejectUnsafeInput);
  app.enableCors({
    origin: config.corsOrigins.length > 0 ? [...config.corsOrigins] : false,
    credentials: true,
    exposedHeaders: [REQUEST_ID_HEADER],
  });
  app.setGlobalPrefix(API_PREFIX, { exclude: PROBES });
  // Also raises the body issues rejectUnsafeInput found (after the guards). No interceptors,
  // global or per route: one makes Nest wrap every request in rxjs and AsyncResource.bind.
  app.useGlobalPipes(new RequestValidationPipe());
  // The catch-all first, the specific filter second: Nest tries the most recently bound first.
  app.useGlobalFilters(new AllExceptionsFilter(), new GatewayExceptionFilter());
  if (options.shutdownHooks ?? true) app.enableShutdownHooks();

  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), {
    jsonDocumentUrl: 'openapi.json',
    yamlDocumentUrl: 'openapi.yaml',
  });
  return app;
}

/** Listens on the configured port with a clear message when it is taken. */
export async function listen(app: INestApplication, config: AppConfig): Promise<string> {
  try {
    await app.listen(config.port, config.host);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(
        `Port ${config.port} on ${config.host} is already in use. Stop the other process or set PORT to a free port.`,
      );
    }
    throw error;
  }
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${shownHost}:${config.port}`;
  new Logger('Bootstrap').log(`Mission Control API listening on ${url} (docs: ${url}/docs)`);
  return url;
}
