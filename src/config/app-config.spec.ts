import { ConfigError, loadConfig, localTokenProblem } from './app-config';

const STRONG = 'a'.repeat(20) + 'B'.repeat(20) + 'c'.repeat(20);
const base = { DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db', LOCAL_AUTH_TOKEN: STRONG };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  it('applies defaults', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      port: 8000,
      host: '0.0.0.0',
      database: { url: base.DATABASE_URL, poolSize: 10 },
      auth: { mode: 'local', localToken: STRONG },
      corsOrigins: [],
      baseUrl: 'http://127.0.0.1:8000',
      logLevel: 'log',
      openclaw: { connectTimeoutMs: 10_000, requestTimeoutMs: 30_000, idleCloseMs: 120_000 },
    });
  });

  it('parses lists, numbers and strips the trailing slash of BASE_URL', () => {
    const config = loadConfig({
      ...base,
      PORT: '9001',
      CORS_ORIGINS: 'http://a.test, http://b.test ,',
      BASE_URL: 'https://mc.example.com/',
      AUTH_MODE: ' JWT ',
      AUTH_JWT_SECRET: 's'.repeat(32),
    });
    expect(config.port).toBe(9001);
    expect(config.corsOrigins).toEqual(['http://a.test', 'http://b.test']);
    expect(config.baseUrl).toBe('https://mc.example.com');
    expect(config.auth).toMatchObject({ mode: 'jwt', jwtSecret: 's'.repeat(32) });
  });

  it('refuses a BASE_URL that is not an absolute http(s) URL', () => {
    for (const value of ['mc.example.com', 'ftp://mc.example.com', '/relative']) {
      expect(problemsOf({ ...base, BASE_URL: value })).toEqual([
        expect.stringContaining('BASE_URL'),
      ]);
    }
    expect(loadConfig({ ...base, BASE_URL: 'http://mc.internal:8000//' }).baseUrl).toBe(
      'http://mc.internal:8000',
    );
  });

  it('refuses a BASE_URL with a query, a fragment or credentials: agents append /api/v1/… to it', () => {
    for (const value of [
      'https://mc.example.com/?tenant=a',
      'https://mc.example.com/#top',
      'https://admin:secret@mc.example.com',
    ]) {
      expect(problemsOf({ ...base, BASE_URL: value })).toEqual([
        expect.stringContaining('BASE_URL'),
      ]);
    }
    expect(loadConfig({ ...base, BASE_URL: 'https://mc.example.com/mission/' }).baseUrl).toBe(
      'https://mc.example.com/mission',
    );
  });

  it('coordination budget and broadcast concurrency: defaults and bounds', () => {
    expect(loadConfig(base).coordination).toEqual({
      retryTimeoutMs: 45_000,
      broadcastConcurrency: 4,
    });
    expect(
      loadConfig({
        ...base,
        COORDINATION_RETRY_TIMEOUT_MS: '2000',
        COORDINATION_BROADCAST_CONCURRENCY: '2',
      }).coordination,
    ).toEqual({ retryTimeoutMs: 2_000, broadcastConcurrency: 2 });
    expect(problemsOf({ ...base, COORDINATION_RETRY_TIMEOUT_MS: '10' })).toEqual([
      expect.stringContaining('COORDINATION_RETRY_TIMEOUT_MS'),
    ]);
    expect(problemsOf({ ...base, COORDINATION_BROADCAST_CONCURRENCY: '0' })).toEqual([
      expect.stringContaining('COORDINATION_BROADCAST_CONCURRENCY'),
    ]);
  });

  it('lists every problem at once and never echoes secret values', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      AUTH_MODE: 'local',
      LOCAL_AUTH_TOKEN: 'short-secret',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('PORT'),
        'DATABASE_URL is required',
        'LOCAL_AUTH_TOKEN must be at least 50 characters',
      ]),
    );
    expect(problems.join('\n')).not.toContain('short-secret');
  });

  it('refuses an unknown auth mode and jwt mode without a key source', () => {
    expect(problemsOf({ ...base, AUTH_MODE: 'clerk' })).toEqual([
      expect.stringContaining('AUTH_MODE'),
    ]);
    expect(problemsOf({ ...base, AUTH_MODE: 'jwt' })).toEqual([
      'AUTH_MODE=jwt needs AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL (RS256/ES256)',
    ]);
    expect(problemsOf({ ...base, AUTH_MODE: 'jwt', AUTH_JWKS_URL: 'not a url' })).toEqual(
      expect.arrayContaining([expect.stringContaining('AUTH_JWKS_URL')]),
    );
  });
});

describe('SECRETS_KEY (gateway tokens at rest)', () => {
  const hex = 'ab'.repeat(32);

  it('is required in production, the problem naming the variable and not a value', () => {
    expect(problemsOf({ ...base, NODE_ENV: 'production' })).toEqual([
      expect.stringContaining('SECRETS_KEY is required in production'),
    ]);
    expect(loadConfig({ ...base, NODE_ENV: 'production', SECRETS_KEY: hex }).secrets).toEqual({
      key: Buffer.from(hex, 'hex'),
      ephemeral: false,
    });
  });

  it('takes 64 hex characters or base64 of 32 bytes and refuses anything else', () => {
    const key = Buffer.from(hex, 'hex');
    expect(loadConfig({ ...base, SECRETS_KEY: key.toString('base64') }).secrets.key).toEqual(key);
    const problems = problemsOf({ ...base, SECRETS_KEY: 'not-a-key-at-all' });
    expect(problems).toEqual([expect.stringContaining('SECRETS_KEY must be 32 bytes')]);
    expect(problems.join('\n')).not.toContain('not-a-key-at-all');
  });

  it('outside production, a missing key is a random one for this process only', () => {
    const config = loadConfig(base);
    expect(config.secrets.ephemeral).toBe(true);
    expect(config.secrets.key).toHaveLength(32);
    expect(loadConfig(base).secrets.key).not.toEqual(config.secrets.key);
  });

  it('accepts OPENCLAW_IDLE_CLOSE_MS 0 (no pooling), refuses negative values', () => {
    expect(loadConfig({ ...base, OPENCLAW_IDLE_CLOSE_MS: '0' }).openclaw.idleCloseMs).toBe(0);
    expect(problemsOf({ ...base, OPENCLAW_IDLE_CLOSE_MS: '-1' })).toEqual([
      expect.stringContaining('OPENCLAW_IDLE_CLOSE_MS'),
    ]);
  });

  it('bounds TEMPLATE_SYNC_CONCURRENCY (default 4)', () => {
    expect(loadConfig(base).templateSync.concurrency).toBe(4);
    expect(loadConfig({ ...base, TEMPLATE_SYNC_CONCURRENCY: '8' }).templateSync.concurrency).toBe(
      8,
    );
    expect(problemsOf({ ...base, TEMPLATE_SYNC_CONCURRENCY: '0' })).toEqual([
      expect.stringContaining('TEMPLATE_SYNC_CONCURRENCY'),
    ]);
  });
});

describe('localTokenProblem', () => {
  it.each(['change-me', 'CHANGEME', 'replace-me', 'Replace-With-Strong-Random-Token'])(
    'refuses the placeholder %s',
    (token) => expect(localTokenProblem(token)).toMatch(/placeholder/),
  );

  it('requires 50 characters', () => {
    expect(localTokenProblem('x'.repeat(49))).toMatch(/50 characters/);
    expect(localTokenProblem('x'.repeat(50))).toBeNull();
    expect(localTokenProblem(undefined)).toMatch(/required/);
  });
});
