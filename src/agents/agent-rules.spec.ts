import { computedStatus, normalizeIdentityProfile, OFFLINE_AFTER_MS } from './dto/agent.dto';

describe('identity_profile normalisation (contract §1.3 AgentCreate)', () => {
  it('trims keys and values, joins lists, drops blanks and nulls', () => {
    expect(
      normalizeIdentityProfile({
        ' role ': ' Researcher ',
        skills: [' search ', '', null, 'summaries'],
        empty: '   ',
        gone: null,
        '  ': 'blank key',
        count: 3,
        flag: true,
        nested: { a: 1 },
      }),
    ).toEqual({
      role: 'Researcher',
      skills: 'search, summaries',
      count: '3',
      flag: 'true',
      nested: '{"a":1}',
    });
  });

  it('an empty result is null; a non-object is left for the validator to refuse', () => {
    expect(normalizeIdentityProfile({ a: ' ', b: [] })).toBeNull();
    expect(normalizeIdentityProfile(null)).toBeNull();
    expect(normalizeIdentityProfile('text')).toBe('text');
    expect(normalizeIdentityProfile(['a'])).toEqual(['a']);
  });
});

describe('computed status (contract §7.2)', () => {
  const now = new Date('2026-11-30T10:00:00Z');
  const ago = (ms: number) => new Date(now.getTime() - ms);

  it.each([
    ['updating', null, 'updating'],
    ['deleting', ago(OFFLINE_AFTER_MS * 2), 'deleting'],
    ['online', null, 'provisioning'],
    ['online', ago(OFFLINE_AFTER_MS + 1), 'offline'],
    ['busy', ago(1_000), 'busy'],
  ] as const)('%s seen %s -> %s', (status, lastSeenAt, expected) => {
    expect(computedStatus({ status, lastSeenAt }, now)).toBe(expected);
  });
});
