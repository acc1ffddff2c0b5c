// Signed tokens (jose, HS256). A publish token is bound to one stream id; a viewer token carries the
// viewer's jurisdiction (and may be bound to a stream); reviewer and admin tokens open the API.
// WHIP/WHEP and the API take `Authorization: Bearer <token>` (RFC 9725 section 4.5); the WebSocket
// takes `?access_token=` because browsers cannot set headers on a WebSocket.
import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { z } from 'zod';
import { SrvError, forbidden, unauthorized } from './errors.ts';

export type Role = 'publisher' | 'viewer' | 'reviewer' | 'admin';
export const ROLES: readonly Role[] = ['publisher', 'viewer', 'reviewer', 'admin'];

export interface Principal {
  role: Role;
  /** Token subject: a user or service name. */
  subject: string;
  /** Publish tokens: the one stream they may publish. Viewer tokens: optional binding. */
  streamId?: string;
  /** ISO 3166-1 alpha-2, upper case. */
  jurisdiction?: string;
  viewerId?: string;
  /** Reviewer tokens: the jurisdictions whose cases they may judge (ISO 3166-1 alpha-2); absent = all. */
  jurisdictions?: string[];
  /** Reviewer tokens: the languages they may judge (BCP 47, e.g. 'de'); absent = all. */
  languages?: string[];
  /** Expiry (epoch s). */
  expiresAt?: number;
}

export interface TokenClaims {
  role: Role;
  sub?: string;
  streamId?: string;
  jurisdiction?: string;
  viewerId?: string;
  jurisdictions?: string[];
  languages?: string[];
}

/** What the header-bearing request looks like to the auth checks (a fastify request fits). */
export interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
  query?: unknown;
}

const ISSUER = 'moderating-sfu';
const AUDIENCE = 'moderating-sfu';
const JURISDICTION = /^[A-Z]{2}$/;
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

const ClaimsSchema = z.object({
  role: z.enum(['publisher', 'viewer', 'reviewer', 'admin']),
  sub: z.string().optional(),
  streamId: z.string().optional(),
  jurisdiction: z.string().regex(JURISDICTION).optional(),
  viewerId: z.string().optional(),
  jurisdictions: z.array(z.string().regex(JURISDICTION)).max(300).optional(),
  languages: z.array(z.string().regex(LANGUAGE)).max(300).optional(),
  exp: z.number().optional(),
});

export function normalizeJurisdiction(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const j = value.trim().toUpperCase();
  return JURISDICTION.test(j) ? j : undefined;
}

export function bearerOf(req: AuthRequest): string | undefined {
  const h = req.headers.authorization;
  const value = Array.isArray(h) ? h[0] : h;
  if (value === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  if (!m) throw unauthorized('Authorization header must be "Bearer <token>"');
  return m[1];
}

function queryOf(req: AuthRequest): Record<string, unknown> {
  return req.query !== null && typeof req.query === 'object' ? (req.query as Record<string, unknown>) : {};
}

export interface AuthOptions {
  /** HS256 secret, 32+ characters. Absent = a random secret (dev mode). */
  secret?: string;
  anonymousViewers?: boolean;
  trustJurisdictionHeader?: boolean;
}

export class Auth {
  readonly anonymousViewers: boolean;
  readonly trustJurisdictionHeader: boolean;
  readonly #key: Uint8Array;

  constructor(options: AuthOptions = {}) {
    this.#key = options.secret ? new TextEncoder().encode(options.secret) : randomBytes(32);
    this.anonymousViewers = options.anonymousViewers ?? true;
    this.trustJurisdictionHeader = options.trustJurisdictionHeader ?? false;
  }

  /** Issues a token. `ttl` in seconds (number) or a jose time span ('12h'). Default 12 h. */
  async sign(claims: TokenClaims, ttl: number | string = '12h'): Promise<string> {
    if (claims.role === 'publisher' && !claims.streamId)
      throw new SrvError('SRV_ERR_BAD_REQUEST', 'a publish token needs a streamId');
    if (claims.jurisdiction !== undefined && !JURISDICTION.test(claims.jurisdiction))
      throw new SrvError('SRV_ERR_BAD_REQUEST', 'jurisdiction must be an ISO 3166-1 alpha-2 code');
    if (claims.jurisdictions?.some((j) => !JURISDICTION.test(j)))
      throw new SrvError('SRV_ERR_BAD_REQUEST', 'jurisdictions must be ISO 3166-1 alpha-2 codes');
    if (claims.languages?.some((l) => !LANGUAGE.test(l)))
      throw new SrvError('SRV_ERR_BAD_REQUEST', "languages must be BCP 47 tags (e.g. 'de', 'pt-BR')");
    const body: Record<string, string | string[]> = { role: claims.role };
    if (claims.streamId) body.streamId = claims.streamId;
    if (claims.jurisdiction) body.jurisdiction = claims.jurisdiction;
    if (claims.viewerId) body.viewerId = claims.viewerId;
    if (claims.jurisdictions) body.jurisdictions = [...claims.jurisdictions];
    if (claims.languages) body.languages = [...claims.languages];
    const jwt = new SignJWT(body)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(claims.sub ?? `${claims.role}-${randomUUID().slice(0, 8)}`)
      .setIssuedAt()
      .setJti(randomUUID());
    jwt.setExpirationTime(typeof ttl === 'number' ? Math.floor(Date.now() / 1000) + ttl : ttl);
    return jwt.sign(this.#key);
  }

  /** Verifies a token: SRV_ERR_UNAUTHORIZED (401) when expired, badly signed or malformed. */
  async verify(token: string): Promise<Principal> {
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.#key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthorized('token expired');
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw unauthorized('token signature is not valid');
      throw unauthorized(`token rejected: ${(err as Error).message}`);
    }
    const claims = ClaimsSchema.safeParse(payload);
    if (!claims.success) throw unauthorized('token claims are not valid');
    const c = claims.data;
    return {
      role: c.role,
      subject: c.sub ?? 'unknown',
      streamId: c.streamId,
      jurisdiction: c.jurisdiction,
      viewerId: c.viewerId,
      ...(c.jurisdictions ? { jurisdictions: c.jurisdictions } : {}),
      ...(c.languages ? { languages: c.languages } : {}),
      expiresAt: c.exp,
    };
  }

  /** Bearer token from the header (or `access_token` from the query when `allowQuery`). */
  async principalOf(req: AuthRequest, allowQuery = false): Promise<Principal | undefined> {
    let token = bearerOf(req);
    if (token === undefined && allowQuery) {
      const q = queryOf(req).access_token;
      if (typeof q === 'string' && q !== '') token = q;
    }
    return token === undefined ? undefined : this.verify(token);
  }

  /** The caller must hold one of `roles` (admin always passes). 401 without token, 403 with the wrong role. */
  async require(req: AuthRequest, roles: readonly Role[], allowQuery = false): Promise<Principal> {
    const p = await this.principalOf(req, allowQuery);
    if (!p) throw unauthorized('a Bearer token is required');
    if (p.role !== 'admin' && !roles.includes(p.role))
      throw forbidden(`role ${p.role} may not do this (needs ${roles.join(' or ')})`);
    return p;
  }

  /** WHIP: a publish token for exactly this stream (or admin). */
  async authorizePublish(req: AuthRequest, streamId: string, allowQuery = false): Promise<Principal> {
    const p = await this.require(req, ['publisher'], allowQuery);
    if (p.role === 'publisher' && p.streamId !== streamId)
      throw forbidden(`publish token is for stream ${p.streamId}, not ${streamId}`);
    return p;
  }

  /** WHEP: a viewer token (bound stream must match), or anonymous when allowed. Jurisdiction from the token, else the trusted header. */
  async authorizeView(
    req: AuthRequest,
    streamId: string,
    allowQuery = false,
  ): Promise<{ principal?: Principal; jurisdiction?: string; viewerId?: string }> {
    const p = await this.principalOf(req, allowQuery);
    if (!p && !this.anonymousViewers) throw unauthorized('a viewer token is required');
    if (p && p.role !== 'viewer' && p.role !== 'admin' && p.role !== 'reviewer')
      throw forbidden(`role ${p.role} may not view (a publish token is for publishing)`);
    if (p?.streamId !== undefined && p.streamId !== streamId)
      throw forbidden(`viewer token is for stream ${p.streamId}, not ${streamId}`);
    let jurisdiction = p?.jurisdiction;
    if (jurisdiction === undefined && this.trustJurisdictionHeader) {
      const h = req.headers['x-viewer-jurisdiction'];
      jurisdiction =
        normalizeJurisdiction(Array.isArray(h) ? h[0] : h) ?? normalizeJurisdiction(queryOf(req).jurisdiction);
    }
    return { principal: p, jurisdiction, viewerId: p?.viewerId };
  }
}
