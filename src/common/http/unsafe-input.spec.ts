import { MAX_INPUT_ARRAY_ITEMS, MAX_INPUT_DEPTH } from '../validation/limits';
import { findUnsafeInput } from './unsafe-input.middleware';

describe('findUnsafeInput', () => {
  it('accepts ordinary JSON, including escaped-looking text', () => {
    expect(
      findUnsafeInput({ a: ['x', 1, null, { b: '\\u0000 is six characters' }] }, ['body']),
    ).toEqual([]);
  });

  it('locates NULs in values and keys at any depth', () => {
    const issues = findUnsafeInput(
      { name: 'a\u0000', metrics: { list: [{ ['k\u0000']: 1 }, 'ok', '\u0000'] } },
      ['body'],
    );
    expect(issues.map((issue) => issue.loc)).toEqual([
      ['body', 'name'],
      ['body', 'metrics', 'list', 0, 'k\u0000'],
      ['body', 'metrics', 'list', 2],
    ]);
    expect(issues.every((issue) => issue.type === 'value_error')).toBe(true);
  });

  it('locates lone surrogates in values and keys; well-formed pairs pass', () => {
    const issues = findUnsafeInput(
      { ok: '😀', high: 'a\ud800', low: ['\udc00b'], nested: { ['\udfff']: 1 } },
      ['body'],
    );
    expect(issues.map((issue) => [issue.loc, issue.type])).toEqual([
      [['body', 'high'], 'value_error'],
      [['body', 'low', 0], 'value_error'],
      // A malformed key cannot be shown: its object is named instead.
      [['body', 'nested'], 'value_error'],
    ]);
    expect(issues.every((issue) => issue.msg.includes('surrogate'))).toBe(true);
  });

  it('bounds nesting and array length without recursing', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const tooDeep = findUnsafeInput(deep, ['body']);
    expect(tooDeep).toHaveLength(1);
    expect(tooDeep[0].loc).toHaveLength(1 + MAX_INPUT_DEPTH);

    const long = findUnsafeInput({ items: new Array(MAX_INPUT_ARRAY_ITEMS + 1).fill(0) }, ['body']);
    expect(long).toEqual([
      expect.objectContaining({ type: 'too_long', loc: ['body', 'items'] }) as unknown,
    ]);
    expect(findUnsafeInput(new Array(MAX_INPUT_ARRAY_ITEMS).fill('x'), ['body'])).toEqual([]);
  });

  it('reports a bounded number of issues', () => {
    const issues = findUnsafeInput(new Array(5_000).fill('\u0000'), ['body']);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.length).toBeLessThanOrEqual(20);
  });
});
