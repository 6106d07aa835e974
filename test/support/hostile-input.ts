/**
 * Hostile inputs for property-based edge tests (fast-check arbitraries) and the check every
 * answer to one must pass. Shared by test/e2e/edge-fuzz.e2e-spec.ts (hand-listed routes) and
 * test/e2e/openapi-fuzz.e2e-spec.ts (every route of the OpenAPI document).
 */
import fc from 'fast-check';
import type { IncomingMessage } from 'node:http';
import type { Response } from 'supertest';

/** Halves of a surrogate pair: alone, they are not well-formed Unicode (JSON allows them). */
export const loneSurrogate = fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff');

/**
 * Strings a client may send: ordinary ones, NULs or lone surrogates anywhere, long and
 * multi-byte ones.
 */
export const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc
    .tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }))
    .map(([head, tail]) => `${head}\u0000${tail}`),
  fc
    .constantFrom(100, 199, 200, 201, 320, 321, 2_000, 3_000, 20_001, 100_000)
    .chain((length) => fc.constantFrom('x', 'é', '😀', 'ab').map((unit) => unit.repeat(length))),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc
    .tuple(fc.string({ maxLength: 20 }), loneSurrogate, fc.string({ maxLength: 20 }))
    .map(([head, half, tail]) => `${head}${half}${tail}`),
  // 'binary' draws whole code points only; these draw single UTF-16 code units, surrogates too.
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)) }),
);

/**
 * Pagination numbers: ordinary, at and beyond every bound (JS safe integers, PostgreSQL bigint,
 * exponent forms), and not numbers at all.
 */
export const hostileNumber = fc.oneof(
  fc.integer({ min: -5, max: 1_000 }).map(String),
  fc.bigInt({ min: 0n, max: 2n ** 80n }).map(String),
  fc.constantFrom(
    '9007199254740991',
    '9007199254740992',
    '9223372036854775807',
    '9223372036854775808',
    '99999999999999999999',
    '1e21',
    '1e308',
    '-0',
    '1.5',
    'NaN',
    'Infinity',
    '',
    '0x10',
  ),
);

/** Any JSON value, hostile strings included, a few levels deep. */
export const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Arrays from empty to far past every bound (150,000 items stays under the 1 MB body limit). */
export const hugeArray = fc
  .constantFrom(0, 1, 999, 1_000, 1_001, 10_001, 150_000)
  .chain((length) =>
    fc
      .constantFrom<unknown>(null, {}, 'x', { board_id: 'not-a-uuid' }, [])
      .map((item) => Array.from({ length }, () => item)),
  );

/** A field's replacement: a hostile string, a huge array or any JSON value. */
export const hostileValue = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 1, arbitrary: hugeArray },
  { weight: 2, arbitrary: hostileJson },
);

/** A valid body with some of its fields (and maybe an unknown one) replaced by hostile values. */
export function hostileBody(base: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const fields = [...Object.keys(base), 'unexpected'];
  return fc
    .uniqueArray(fc.constantFrom(...fields), { minLength: 1, maxLength: 3 })
    .chain((chosen) =>
      fc.tuple(...chosen.map(() => hostileValue)).map((values) => {
        const body: Record<string, unknown> = { ...base };
        chosen.forEach((field, index) => (body[field] = values[index]));
        return body;
      }),
    );
}

/**
 * encodeURIComponent, except that a lone surrogate (which it refuses) becomes its 3-byte
 * CESU-8 form: bytes that are not valid UTF-8, as a hostile client could send.
 */
export function encodeLoosely(text: string): string {
  let encoded = '';
  for (const char of text) {
    const unit = char.charCodeAt(0);
    if (char.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
      encoded += [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
        .map((byte) => `%${byte.toString(16).toUpperCase()}`)
        .join('');
    } else {
      encoded += encodeURIComponent(char);
    }
  }
  return encoded;
}

/**
 * Why an answer breaks the contract for bad input, or null: never a 5xx; every 4xx carries the
 * upstream envelope `{detail, request_id}`, and a 422 detail list has `type`, `loc`, `msg`.
 */
export function unhandledAnswer(res: Response): string | null {
  const body = res.body as unknown;
  const shown = () => JSON.stringify(body)?.slice(0, 300) ?? String(body);
  if (res.status >= 500) return `answered ${res.status}: ${shown()}`;
  if (res.status < 400) return null;
  const envelope = body as { detail?: unknown; request_id?: unknown } | null;
  if (
    typeof envelope !== 'object' ||
    envelope === null ||
    Object.keys(envelope).sort().join(',') !== 'detail,request_id' ||
    envelope.detail === undefined ||
    envelope.detail === null ||
    typeof envelope.request_id !== 'string'
  ) {
    return `answered ${res.status} without the error envelope: ${shown()}`;
  }
  if (res.status === 422 && Array.isArray(envelope.detail)) {
    for (const issue of envelope.detail as Record<string, unknown>[]) {
      if (
        typeof issue !== 'object' ||
        issue === null ||
        typeof issue.type !== 'string' ||
        !Array.isArray(issue.loc) ||
        typeof issue.msg !== 'string'
      ) {
        return `answered 422 with a malformed detail item: ${shown()}`;
      }
    }
  }
  return null;
}

/** Throws when {@link unhandledAnswer} finds a problem (for use inside a property). */
export function expectHandled(res: Response, what: string): void {
  const problem = unhandledAnswer(res);
  if (problem) throw new Error(`${what} ${problem}`);
}

/**
 * A response parser (for supertest's `.parse()`) that stops at the headers of an event stream
 * (which never ends) and otherwise reads the JSON body as supertest would (text if not JSON).
 */
export function untilStreamOpens(
  res: IncomingMessage,
  callback: (error: Error | null, body: unknown) => void,
): void {
  if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    callback(null, {});
    res.destroy();
    return;
  }
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (text += chunk));
  res.on('end', () => {
    try {
      callback(null, text ? (JSON.parse(text) as unknown) : {});
    } catch {
      callback(null, text);
    }
  });
}
