import { SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { TEST_JWT_SECRET } from './test-app';

export interface TestIdentity {
  sub: string;
  email?: string;
  name?: string;
  /** The `email_verified` claim sent with an email; true unless set (invites need it). */
  emailVerified?: boolean;
}

/** An HS256 token the test app (AUTH_MODE=jwt) accepts, valid for an hour; emails are verified. */
export async function userToken(identity: TestIdentity, secret = TEST_JWT_SECRET): Promise<string> {
  const claims: Record<string, unknown> = {};
  if (identity.email !== undefined) {
    claims.email = identity.email;
    claims.email_verified = identity.emailVerified ?? true;
  }
  if (identity.name !== undefined) claims.name = identity.name;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(identity.sub)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

/** A new identity with a unique subject and email. */
export function newIdentity(label = 'user'): TestIdentity {
  const id = randomUUID().slice(0, 8);
  return { sub: `${label}-${id}`, email: `${label}-${id}@example.test`, name: `${label} ${id}` };
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
