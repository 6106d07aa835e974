import { Logger } from '@nestjs/common';
import { INTERCEPTORS_METADATA } from '@nestjs/common/constants';
import { ApplicationConfig, ModulesContainer } from '@nestjs/core';
import { Client } from 'pg';
import { waitUntil } from '../support/eventually';
import { ProbeModule } from '../support/probe.module';
import { createTestApp, TestApp } from '../support/test-app';

interface OpenApiOperation {
  security?: unknown[];
  responses: Record<string, unknown>;
}

describe('HTTP contract: error envelope, request ids, validation, probes, OpenAPI', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({}, { imports: [ProbeModule] });
  });
  afterAll(async () => {
    await t.close();
  });

  describe('request id', () => {
    it('is generated (uuid4 hex) on every response and put in error bodies', async () => {
      const ok = await t.http.get('/healthz').expect(200);
      expect(ok.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
      const notFound = await t.http.get('/api/v1/nope').expect(404);
      expect(notFound.body).toEqual({
        detail: 'Not Found',
        request_id: notFound.headers['x-request-id'],
      });
    });

    it('echoes a client-supplied id, and replaces a blank or oversized one', async () => {
      const echoed = await t.http
        .get('/api/v1/users/me')
        .set('X-Request-Id', 'trace-abc-123')
        .expect(401);
      expect(echoed.headers['x-request-id']).toBe('trace-abc-123');
      expect(echoed.body.request_id).toBe('trace-abc-123');
      const blank = await t.http.get('/healthz').set('X-Request-Id', '   ').expect(200);
      expect(blank.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
      const huge = await t.http.get('/healthz').set('X-Request-Id', 'x'.repeat(500)).expect(200);
      expect(huge.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    });
  });

  describe('request pipeline', () => {
    it('has no interceptor, global or on any controller or route', () => {
      // Any interceptor makes Nest run every request of the app through rxjs and
      // AsyncResource.bind: a third of the per-request CPU (bench/heartbeats.mjs, README).
      expect(t.app.get(ApplicationConfig).getGlobalInterceptors()).toEqual([]);
      const intercepted: string[] = [];
      for (const module of t.app.get(ModulesContainer).values()) {
        for (const { metatype } of module.controllers.values()) {
          if (typeof metatype !== 'function') continue;
          const controller = metatype as new () => object;
          if (Reflect.getMetadata(INTERCEPTORS_METADATA, controller))
            intercepted.push(controller.name);
          for (const key of Object.getOwnPropertyNames(controller.prototype)) {
            const handler = (controller.prototype as Record<string, unknown>)[key];
            if (
              typeof handler === 'function' &&
              Reflect.getMetadata(INTERCEPTORS_METADATA, handler)
            ) {
              intercepted.push(`${controller.name}.${key}`);
            }
          }
        }
      }
      expect(intercepted).toEqual([]);
    });

    it('sends no ETag (no body is hashed for conditional requests nobody makes)', async () => {
      const res = await t.http.get('/healthz').expect(200);
      expect(res.headers.etag).toBeUndefined();
    });
  });

  describe('errors', () => {
    it('unknown routes are 404 with the reason phrase, not Nest text', async () => {
      const res = await t.http.post('/api/v1/does/not/exist').send({}).expect(404);
      expect(res.body.detail).toBe('Not Found');
    });

    it('unhandled errors are 500 "Internal Server Error" with no internals', async () => {
      const res = await t.http.get('/api/v1/probe/boom').expect(500);
      expect(res.body).toEqual({ detail: 'Internal Server Error', request_id: expect.any(String) });
      expect(JSON.stringify(res.body)).not.toContain('hunter2');
    });

    it('an instance too busy to take the request is 503 with Retry-After', async () => {
      const res = await t.http.get('/api/v1/probe/busy').expect(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.body).toEqual({
        detail: 'Too many things are waiting; retry shortly.',
        request_id: res.headers['x-request-id'],
      });
    });

    it('a transaction PostgreSQL aborts as a deadlock is 503 "retry", not 500', async () => {
      // A real deadlock: this connection holds lock 2 and then asks for lock 1 while the probe's
      // transaction holds 1 and waits for 2. This side's deadlock_timeout is long, so the app's
      // backend (1 s, the default) is the one that detects it and is aborted.
      const other = new Client({ connectionString: t.databaseUrl });
      await other.connect();
      try {
        await other.query(`SET deadlock_timeout = '60s'`);
        await other.query('BEGIN');
        await other.query('SELECT pg_advisory_xact_lock(912002)');
        const answer = t.http.get('/api/v1/probe/deadlock').then((res) => res);
        await waitUntil(async () => {
          const { rows } = await other.query<{ waiting: number }>(
            `SELECT count(*)::int AS waiting FROM pg_locks
              WHERE locktype = 'advisory' AND NOT granted AND objid = 912002`,
          );
          return rows[0].waiting > 0;
        });
        const mine = other.query('SELECT pg_advisory_xact_lock(912001)');
        const res = await answer;
        await mine;
        await other.query('COMMIT');
        expect(res.status).toBe(503);
        expect(res.headers['retry-after']).toBe('1');
        expect(res.body.detail).toBe(
          'The request conflicted with a concurrent change and was rolled back; retry it.',
        );
      } finally {
        await other.end();
      }
    });

    it('error logs name the route without its query string (it can carry a gateway token)', async () => {
      const logged: string[] = [];
      const capture = (...args: unknown[]) => {
        logged.push(args.map(String).join(' '));
      };
      const spies = [
        jest.spyOn(Logger.prototype, 'error').mockImplementation(capture),
        jest.spyOn(Logger.prototype, 'warn').mockImplementation(capture),
      ];
      try {
        await t.http.get('/api/v1/probe/boom?gateway_token=s3cret-token-value').expect(500);
        await t.http
          .get('/api/v1/probe/gateway-nudge?gateway_token=s3cret-token-value')
          .expect(502);
        await t.http.get('/api/v1/probe/provisioning?token=s3cret-token-value').expect(500);
      } finally {
        for (const spy of spies) spy.mockRestore();
      }
      expect(logged.some((line) => line.includes('/api/v1/probe/boom'))).toBe(true);
      expect(logged.some((line) => line.includes('/api/v1/probe/gateway-nudge'))).toBe(true);
      expect(logged.join('\n')).not.toContain('s3cret-token-value');
    });

    it('maps gateway failures to 502 with the operation detail text', async () => {
      const nudge = await t.http.get('/api/v1/probe/gateway-nudge').expect(502);
      expect(nudge.body.detail).toBe('Gateway nudge failed: connection refused');
      const rpc = await t.http.get('/api/v1/probe/gateway-rpc').expect(502);
      expect(rpc.body.detail).toBe('unknown session key');
    });

    it('maps unexpected provisioning failures to 500 with a fixed text and no cause', async () => {
      const res = await t.http.get('/api/v1/probe/provisioning').expect(500);
      expect(res.body.detail).toBe('Unexpected error updating agent provisioning.');
      expect(JSON.stringify(res.body)).not.toContain('agent_name');
    });
  });

  describe('validation', () => {
    it('lists every problem as {type, loc, msg, input} with 422', async () => {
      const res = await t.http
        .post('/api/v1/probe/echo')
        .send({ count: '3', items: [{ label: 'a' }, { label: 7 }, 'x'] })
        .expect(422);
      expect(res.body.detail).toEqual(
        expect.arrayContaining([
          { type: 'missing', loc: ['body', 'name'], msg: 'Field required' },
          expect.objectContaining({ type: 'int_type', loc: ['body', 'count'], input: '3' }),
          expect.objectContaining({
            type: 'string_type',
            loc: ['body', 'items', 1, 'label'],
            input: 7,
          }),
          expect.objectContaining({ loc: ['body', 'items', 2] }),
        ]),
      );
      for (const issue of res.body.detail) expect(typeof issue.msg).toBe('string');
    });

    it('strips unknown fields and answers 200 to POST', async () => {
      const res = await t.http
        .post('/api/v1/probe/echo')
        .send({ name: 'n', count: 2, items: [{ label: 'a', extra: true }], admin: true })
        .expect(200);
      expect(res.body).toEqual({ name: 'n', count: 2, items: [{ label: 'a' }] });
    });

    it('malformed JSON, a missing body and a non-object body are 422', async () => {
      const bad = await t.http
        .post('/api/v1/probe/echo')
        .set('Content-Type', 'application/json')
        .send('{"name": ')
        .expect(422);
      expect(bad.body.detail).toEqual([
        expect.objectContaining({ type: 'json_invalid', loc: ['body'] }),
      ]);
      const missing = await t.http.post('/api/v1/probe/echo').expect(422);
      expect(missing.body.detail).toEqual([
        { type: 'missing', loc: ['body'], msg: 'Field required' },
      ]);
      const list = await t.http.post('/api/v1/probe/echo').send([1, 2]).expect(422);
      expect(list.body.detail[0]).toMatchObject({ type: 'model_attributes_type', loc: ['body'] });
    });

    it('an oversized body is 413 in the envelope', async () => {
      const res = await t.http
        .post('/api/v1/probe/echo')
        .send({ name: 'x'.repeat(2 * 1024 * 1024), count: 1, items: [] })
        .expect(413);
      expect(res.body.detail).toBe('Payload Too Large');
    });
  });

  describe('probes', () => {
    it.each(['/health', '/healthz', '/readyz'])('%s answers {"ok": true}', async (path) => {
      const res = await t.http.get(path).expect(200);
      expect(res.body).toEqual({ ok: true });
    });
  });

  describe('OpenAPI', () => {
    it('documents every route with its auth scheme at /openapi.json', async () => {
      const res = await t.http.get('/openapi.json').expect(200);
      const doc = res.body;
      expect(doc.openapi).toMatch(/^3\./);
      expect(Object.keys(doc.components.securitySchemes).sort()).toEqual([
        'agent-bearer',
        'agent-token',
        'user-bearer',
      ]);
      expect(doc.paths['/api/v1/users/me'].get.security).toEqual([{ 'user-bearer': [] }]);
      expect(doc.paths['/api/v1/users/me'].patch.requestBody).toBeDefined();
      expect(doc.paths['/readyz']).toBeDefined();
      expect(doc.components.schemas.UserRead.properties.clerk_user_id).toBeDefined();
    });

    it('every API operation declares its auth scheme, a 200 response and its errors', async () => {
      const doc = (await t.http.get('/openapi.json').expect(200)).body;
      const operations = Object.entries(
        doc.paths as Record<string, Record<string, OpenApiOperation>>,
      ).flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, op]) => ({ path, method, op })),
      );
      const api = operations.filter(
        ({ path }) => path.startsWith('/api/v1/') && !path.includes('/probe/'),
      );
      expect(api.length).toBeGreaterThanOrEqual(24);
      for (const { path, method, op } of api) {
        const where = `${method.toUpperCase()} ${path}`;
        expect([where, (op.security?.length ?? 0) > 0]).toEqual([where, true]);
        expect([where, Object.keys(op.responses)]).toEqual([
          where,
          expect.arrayContaining(['200', '401']),
        ]);
      }
    });

    it('serves interactive docs at /docs', async () => {
      const res = await t.http.get('/docs').redirects(1).expect(200);
      expect(res.text).toContain('swagger');
    });
  });
});

describe('readiness when the database is gone', () => {
  it('/readyz answers 503 and /healthz stays 200', async () => {
    const t = await createTestApp();
    try {
      await t.dataSource.destroy();
      const res = await t.http.get('/readyz').expect(503);
      expect(res.body).toEqual({ ok: false });
      await t.http.get('/healthz').expect(200);
    } finally {
      await t.close().catch(() => undefined);
    }
  });
});
