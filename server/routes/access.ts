// Who may call a route. One `guard` per server (made from its Auth in buildServer) is handed to
// every route plugin: `onRequest: guard(['reviewer'])` checks the Bearer token's role and leaves the
// principal on the request for the handler (`who(req)` names it in audit entries).
import type { FastifyRequest } from 'fastify';
import type { Auth, Principal, Role } from '../auth.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** An onRequest hook admitting the given roles (admin passes every role check; see Auth.require). */
export type Guard = (roles: readonly Role[]) => (req: FastifyRequest) => Promise<void>;

export function guardOf(auth: Auth): Guard {
  return (roles) => async (req) => {
    req.principal = await auth.require(req, roles);
  };
}

/** The guarded caller's subject, as audit entries name it. */
export function who(req: FastifyRequest): string {
  return req.principal?.subject ?? 'unknown';
}
