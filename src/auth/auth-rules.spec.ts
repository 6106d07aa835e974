import type { Agent } from '../agents/entities/agent.entity';
import type { Board } from '../boards/entities/board.entity';
import { agentTokenDigest, generateAgentToken } from './agent-token';
import { agentMayActOnBoard } from './guards/agent-auth.guard';
import { isOrgAdmin, normalizeRole, roleRank } from '../organizations/roles';
import { constantTimeEquals, identityFromClaims, isStorableIdentity } from './user-auth.service';

describe('agent tokens', () => {
  it('are 256-bit URL-safe strings, unique, with a stable sha256 digest', () => {
    const tokens = new Set(Array.from({ length: 100 }, generateAgentToken));
    expect(tokens.size).toBe(100);
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const [token] = tokens;
    expect(agentTokenDigest(token)).toBe(agentTokenDigest(token));
    expect(agentTokenDigest(token)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(agentTokenDigest(token)).not.toContain(token);
  });
});

describe('identityFromClaims', () => {
  it('needs a subject', () => {
    expect(identityFromClaims({ email: 'a@b.c' })).toBeNull();
    expect(identityFromClaims({ sub: '  ' })).toBeNull();
  });

  it('takes the first non-blank email claim, lowercased', () => {
    expect(identityFromClaims({ sub: 's', email: ' ', email_address: 'X@Y.Z' })?.email).toBe(
      'x@y.z',
    );
    expect(identityFromClaims({ sub: 's', primary_email_address: 'p@q.r' })?.email).toBe('p@q.r');
  });

  it('falls back to the primary entry of email_addresses, then the first valid one', () => {
    const claims = {
      sub: 's',
      primary_email_address_id: 'e2',
      email_addresses: [
        { id: 'e1', email_address: 'first@x.test' },
        { id: 'e2', email_address: 'Primary@x.test' },
      ],
    };
    expect(identityFromClaims(claims)?.email).toBe('primary@x.test');
    expect(
      identityFromClaims({ sub: 's', email_addresses: ['', { email: 'second@x.test' }] })?.email,
    ).toBe('second@x.test');
  });

  it('builds the name from name, full_name or given + family names', () => {
    expect(identityFromClaims({ sub: 's', name: 'Ada' })?.name).toBe('Ada');
    expect(identityFromClaims({ sub: 's', full_name: 'Ada L' })?.name).toBe('Ada L');
    expect(identityFromClaims({ sub: 's', first_name: 'Ada', last_name: 'Lovelace' })?.name).toBe(
      'Ada Lovelace',
    );
    expect(identityFromClaims({ sub: 's', family_name: 'Lovelace' })?.name).toBe('Lovelace');
    expect(identityFromClaims({ sub: 's' })?.name).toBeNull();
  });

  it('trusts the email only when email_verified is true (or the string "true")', () => {
    const verified = (claim: unknown) =>
      identityFromClaims({ sub: 's', email: 'a@b.c', email_verified: claim })?.emailVerified;
    expect(verified(true)).toBe(true);
    expect(verified('true')).toBe(true);
    for (const claim of [undefined, false, 'false', 1, 'yes']) expect(verified(claim)).toBe(false);
  });

  it('refuses to store identities with NULs or values past their column bounds', () => {
    const identity = { subject: 's', email: 'a@b.c', name: 'A', emailVerified: true };
    expect(isStorableIdentity(identity)).toBe(true);
    expect(isStorableIdentity({ ...identity, email: null, name: null })).toBe(true);
    expect(isStorableIdentity({ ...identity, subject: 's\u0000' })).toBe(false);
    expect(isStorableIdentity({ ...identity, email: 'a\u0000@b.c' })).toBe(false);
    expect(isStorableIdentity({ ...identity, name: 'x'.repeat(201) })).toBe(false);
    expect(isStorableIdentity({ ...identity, email: `${'x'.repeat(320)}@b.c` })).toBe(false);
  });
});

describe('constantTimeEquals', () => {
  it('compares values of any length', () => {
    expect(constantTimeEquals('abc', 'abc')).toBe(true);
    expect(constantTimeEquals('abc', 'abcd')).toBe(false);
    expect(constantTimeEquals('', 'a')).toBe(false);
  });
});

describe('roles', () => {
  it('normalises, ranks and recognises admins', () => {
    expect(normalizeRole('  ADMIN ')).toBe('admin');
    expect(normalizeRole('   ')).toBe('member');
    expect([roleRank('member'), roleRank('admin'), roleRank('owner'), roleRank('viewer')]).toEqual([
      0, 1, 2, 0,
    ]);
    expect(isOrgAdmin({ role: 'owner' })).toBe(true);
    expect(isOrgAdmin({ role: 'admin' })).toBe(true);
    expect(isOrgAdmin({ role: 'member' })).toBe(false);
  });
});

describe('agentMayActOnBoard', () => {
  const board = { id: 'b1', gatewayId: 'g1' } as Board;

  it('lets a board agent act only on its own board', () => {
    expect(agentMayActOnBoard({ boardId: 'b1', gatewayId: 'g1' } as Agent, board)).toBe(true);
    expect(agentMayActOnBoard({ boardId: 'b2', gatewayId: 'g1' } as Agent, board)).toBe(false);
  });

  it("lets a gateway main agent act only on its gateway's boards", () => {
    expect(agentMayActOnBoard({ boardId: null, gatewayId: 'g1' } as Agent, board)).toBe(true);
    expect(agentMayActOnBoard({ boardId: null, gatewayId: 'g2' } as Agent, board)).toBe(false);
  });
});
