import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  JWTPayload,
  jwtVerify,
  JWTVerifyOptions,
} from 'jose';
import { createHash, timingSafeEqual } from 'node:crypto';
import { Repository } from 'typeorm';
import { MAX_LENGTH } from '../common/validation/limits';
import { APP_CONFIG } from '../config/app-config';
import type { AppConfig } from '../config/app-config';
import { User } from '../users/entities/user.entity';

/** Who a valid bearer token says the caller is. */
export interface VerifiedIdentity {
  subject: string;
  email: string | null;
  name: string | null;
  /**
   * Whether the email may be trusted to be the caller's: a pending invite for it is accepted on
   * the first request only when it is (JWT `email_verified`, or AUTH_JWT_TRUST_EMAIL=true).
   */
  emailVerified: boolean;
}

export const LOCAL_USER_IDENTITY: VerifiedIdentity = {
  subject: 'local-auth-user',
  email: 'admin@home.local',
  name: 'Local User',
  emailVerified: true,
};

/** The user columns the claims are stored in, and the longest value each takes. */
const IDENTITY_MAX_LENGTH = {
  subject: MAX_LENGTH.name,
  email: MAX_LENGTH.email,
  name: MAX_LENGTH.name,
} as const;

/**
 * Whether an identity can be stored as it is: no NUL characters (PostgreSQL refuses them) and no
 * value longer than its column's bound (the subject and email are indexed). A token carrying
 * such claims is refused like any other bad token, rather than half-stored.
 */
export function isStorableIdentity(identity: VerifiedIdentity): boolean {
  return (Object.keys(IDENTITY_MAX_LENGTH) as (keyof typeof IDENTITY_MAX_LENGTH)[]).every(
    (field) => {
      const value = identity[field];
      return (
        value === null || (!value.includes('\u0000') && value.length <= IDENTITY_MAX_LENGTH[field])
      );
    },
  );
}

/**
 * The email the current token vouches for: its email claim when that same token says it is
 * verified (or AUTH_JWT_TRUST_EMAIL=true), else null. Invite acceptance and auto-join use only
 * this, never an email stored by an earlier token.
 */
export function verifiedEmailOf(identity: VerifiedIdentity): string | null {
  return identity.emailVerified && identity.email ? identity.email : null;
}

/** OIDC `email_verified`; some providers send it as the string "true". */
function claimsVerifiedEmail(claims: JWTPayload): boolean {
  const verified = (claims as Record<string, unknown>).email_verified;
  return verified === true || verified === 'true';
}

/** A user row and the verified token identity it was resolved from. */
export interface AuthenticatedUser {
  user: User;
  identity: VerifiedIdentity;
}

const JWKS_CACHE_MS = 300_000;
/**
 * A token naming an unknown `kid` forces one key-set refetch (the issuer may have rotated keys),
 * but at most this often, so random kids cannot turn us into a JWKS request amplifier.
 */
const JWKS_FORCED_RELOAD_INTERVAL_MS = 10_000;

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Compares two secrets in time independent of where they differ (and of their lengths). */
export function constantTimeEquals(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

function firstNonBlank(...values: unknown[]): string | null {
  for (const value of values) {
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return null;
}

/** Email and name from OIDC/Clerk-style claims, with the upstream fallbacks. */
export function identityFromClaims(claims: JWTPayload): VerifiedIdentity | null {
  const subject = firstNonBlank(claims.sub);
  if (!subject) return null;
  const c = claims as Record<string, unknown>;
  let email = firstNonBlank(c.email, c.email_address, c.primary_email_address);
  if (!email && Array.isArray(c.email_addresses)) {
    const entries = c.email_addresses as unknown[];
    const emailOf = (entry: unknown): string | null =>
      typeof entry === 'string'
        ? firstNonBlank(entry)
        : entry && typeof entry === 'object'
          ? firstNonBlank(
              (entry as Record<string, unknown>).email_address,
              (entry as Record<string, unknown>).email,
            )
          : null;
    const primary = entries.find(
      (entry) =>
        entry !== null &&
        typeof entry === 'object' &&
        (entry as Record<string, unknown>).id === c.primary_email_address_id,
    );
    email =
      (primary ? emailOf(primary) : null) ?? entries.map(emailOf).find((value) => value) ?? null;
  }
  const given = firstNonBlank(c.given_name, c.first_name);
  const family = firstNonBlank(c.family_name, c.last_name);
  const name =
    firstNonBlank(c.name, c.full_name) ??
    (given || family ? [given, family].filter(Boolean).join(' ') : null);
  return {
    subject,
    email: email ? email.toLowerCase() : null,
    name,
    emailVerified: claimsVerifiedEmail(claims),
  };
}

/**
 * Turns an `Authorization: Bearer` token into a user row: the shared local token (AUTH_MODE=local)
 * or a verified JWT (AUTH_MODE=jwt). Returns null for anything that does not verify.
 */
@Injectable()
export class UserAuthService {
  private readonly logger = new Logger(UserAuthService.name);
  private readonly jwks?: ReturnType<typeof createRemoteJWKSet>;
  private lastForcedJwksReload = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectRepository(User) private readonly users: Repository<User>,
  ) {
    if (config.auth.mode === 'jwt' && config.auth.jwksUrl) {
      this.jwks = createRemoteJWKSet(new URL(config.auth.jwksUrl), {
        cacheMaxAge: JWKS_CACHE_MS,
        cooldownDuration: JWKS_FORCED_RELOAD_INTERVAL_MS,
      });
    }
  }

  async authenticate(bearerToken: string | null): Promise<AuthenticatedUser | null> {
    if (!bearerToken) return null;
    const identity = await this.verify(bearerToken);
    return identity ? { user: await this.syncUser(identity), identity } : null;
  }

  async verify(token: string): Promise<VerifiedIdentity | null> {
    const auth = this.config.auth;
    if (auth.mode === 'local') {
      return constantTimeEquals(token, auth.localToken) ? LOCAL_USER_IDENTITY : null;
    }
    try {
      const { alg } = decodeProtectedHeader(token);
      const options: JWTVerifyOptions = {
        issuer: auth.issuer,
        audience: auth.audience,
        clockTolerance: auth.clockToleranceSeconds,
        // A token without an expiry would be valid forever once leaked.
        requiredClaims: ['exp'],
      };
      let payload: JWTPayload;
      if (alg === 'HS256' && auth.jwtSecret) {
        const key = new TextEncoder().encode(auth.jwtSecret);
        ({ payload } = await jwtVerify(token, key, { ...options, algorithms: ['HS256'] }));
      } else if ((alg === 'RS256' || alg === 'ES256') && this.jwks) {
        payload = await this.verifyWithJwks(token, this.jwks, options);
      } else {
        return null;
      }
      const identity = identityFromClaims(payload);
      if (!identity || !isStorableIdentity(identity)) return null;
      return auth.trustEmail ? { ...identity, emailVerified: true } : identity;
    } catch (error) {
      this.logger.debug(`Bearer token rejected: ${(error as Error).message}`);
      return null;
    }
  }

  private async verifyWithJwks(
    token: string,
    jwks: ReturnType<typeof createRemoteJWKSet>,
    options: JWTVerifyOptions,
  ): Promise<JWTPayload> {
    const verifyOptions = { ...options, algorithms: ['RS256', 'ES256'] };
    try {
      return (await jwtVerify(token, jwks, verifyOptions)).payload;
    } catch (error) {
      const now = Date.now();
      if (
        !(error instanceof errors.JWKSNoMatchingKey) ||
        now - this.lastForcedJwksReload < JWKS_FORCED_RELOAD_INTERVAL_MS
      ) {
        throw error;
      }
      this.lastForcedJwksReload = now;
      await jwks.reload();
      return (await jwtVerify(token, jwks, verifyOptions)).payload;
    }
  }

  /** Get or create the user for an identity; fill the profile from the claims. */
  async syncUser(identity: VerifiedIdentity): Promise<User> {
    let user = await this.users.findOne({ where: { clerkUserId: identity.subject } });
    if (!user) {
      // Concurrent first requests from one user race here; the unique key makes one insert win.
      await this.users
        .createQueryBuilder()
        .insert()
        .values({ clerkUserId: identity.subject, email: identity.email, name: identity.name })
        .orIgnore()
        .execute();
      user = await this.users.findOneOrFail({ where: { clerkUserId: identity.subject } });
    }
    const changes: Partial<User> = {};
    // A verified email replaces the stored one; an unverified one only fills an empty column
    // (it is shown, never trusted), so a token cannot swap a verified address for an arbitrary one.
    const email = verifiedEmailOf(identity) ?? (user.email ? null : identity.email);
    if (email && email !== user.email) changes.email = email;
    if (identity.name && !user.name?.trim()) changes.name = identity.name;
    if (Object.keys(changes).length > 0) {
      await this.users.update({ id: user.id }, changes);
      Object.assign(user, changes);
    }
    return user;
  }
}
