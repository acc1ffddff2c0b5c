// WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) over an Sfu, as a fastify plugin, plus the two
// plain pages (/publish, /watch).
//
//   app.register(webrtcRoutes, { sfu, authorizePublish, authorizeView, initialGate, onPublish, onView });
//   app.register(pageRoutes);
//
// POST /whip/:streamId (application/sdp offer) -> 201, SDP answer with every host candidate (ICE-lite,
// no trickle), Location: /whip/:streamId/:sessionId. DELETE on the Location ends the session. PATCH
// -> 405 (no trickle, no ICE restart). OPTIONS answers CORS preflights; Location is exposed to
// browser clients on other origins. The same under /whep/ for viewers.
// Admission (server/sessions.ts): a full node answers 503 SRV_ERR_CAPACITY, a client holding too many
// unconnected sessions 429 SRV_ERR_RATE_LIMITED, both with Retry-After; never a 201 that cannot connect.
// A publisher whose offer carries the credential of the stream's live session (the same publish
// token: a streamer reconnecting after a crash) replaces that session at once instead of getting 409.

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type {} from '@fastify/rate-limit';
import { SfuError, badSdp, sessionNotFound } from '../../sfu/errors.ts';
import type { Sfu, Stream, Viewer, ViewerGateState } from '../../sfu/types.ts';
import { AdmissionError, WebrtcSessions, type AdmissionLimits, type Ticket } from '../sessions.ts';

export interface WebrtcRoutesOptions {
  sfu: Sfu;
  /** Throws a coded 401/403 error to refuse. Also checked on DELETE of a WHIP session. */
  authorizePublish?(
    req: FastifyRequest,
    streamId: string,
  ): Promise<PublishAuthorization | void> | PublishAuthorization | void;
  /** Throws a coded 401/403 error to refuse; returns the viewer's jurisdiction and id. */
  authorizeView?(req: FastifyRequest, streamId: string): Promise<ViewAuthorization> | ViewAuthorization;
  /** The gate a new viewer starts with (so a late joiner is filtered from the first frame). */
  initialGate?(streamId: string, jurisdiction: string | undefined): Partial<ViewerGateState> | undefined;
  onPublish?(stream: Stream, req: FastifyRequest): void;
  onView?(viewer: Viewer, req: FastifyRequest): void;
  /** Largest accepted SDP body (bytes). Default 64 KiB; larger -> 413. */
  maxSdpBytes?: number;
  /** The node's session registry (shared with the events hub). Default: one of its own with `limits`. */
  sessions?: WebrtcSessions;
  /** Admission limits when the plugin makes its own registry. Default: none (the server always passes its registry). */
  limits?: Partial<AdmissionLimits>;
  /** STUN/TURN servers told to clients in Link headers of the 201 answer (RFC 9725 4.6). Default none. */
  iceServers?: readonly IceServer[];
  /** WHIP/WHEP offers per client address per minute, enforced by @fastify/rate-limit when the app registered it. 0 = none. Default 0. */
  offersPerMinute?: number;
}

export interface IceServer {
  urls: readonly string[];
  username?: string;
  credential?: string;
}

/**
 * One Link header value per ICE server URI (RFC 9725 4.6, RFC 8288 link-params):
 *   <turn:turn.example.net?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"
 */
export function iceServerLinks(servers: readonly IceServer[]): string[] {
  const quoted = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return servers.flatMap((s) =>
    s.urls.map(
      (u) =>
        `<${u}>; rel="ice-server"${s.username !== undefined && s.credential !== undefined ? `; username=${quoted(s.username)}; credential=${quoted(s.credential)}; credential-type="password"` : ''}`,
    ),
  );
}

export interface PublishAuthorization {
  /** An opaque key of the credential that authorized this publish (e.g. a hash of the token): an offer with the same key replaces the stream's live session. */
  credential?: string;
}

export interface ViewAuthorization {
  jurisdiction?: string;
  viewerId?: string;
}

const SDP = 'application/sdp';
const NO_LIMITS: AdmissionLimits = {
  maxStreams: Infinity,
  maxViewers: Infinity,
  maxPending: Infinity,
  maxPendingPerClient: Infinity,
  retryAfterS: 5,
};
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, DELETE, PATCH, OPTIONS',
  'access-control-allow-headers': 'Authorization, Content-Type, If-Match',
  'access-control-expose-headers': 'Location, Link, Accept-Post, Accept-Patch',
  'access-control-max-age': '600',
};

function isSdp(req: FastifyRequest): boolean {
  const ct = req.headers['content-type'];
  return typeof ct === 'string' && ct.split(';')[0]!.trim().toLowerCase() === SDP;
}

export const webrtcRoutes: FastifyPluginAsync<WebrtcRoutesOptions> = async (app, opts) => {
  const sfu = opts.sfu;
  const sessions = opts.sessions ?? new WebrtcSessions(sfu, opts.limits ?? NO_LIMITS);
  const offerLimit = opts.offersPerMinute ? { rateLimit: { max: opts.offersPerMinute, timeWindow: '1 minute' } } : {};
  const bodyLimit = opts.maxSdpBytes ?? 64 * 1024;
  const links = iceServerLinks(opts.iceServers ?? []);

  app.addContentTypeParser(SDP, { parseAs: 'string', bodyLimit }, (_req, body, done) => done(null, body));
  // so a trickle PATCH reaches its route and gets 405 rather than 415
  app.addContentTypeParser('application/trickle-ice-sdpfrag', { parseAs: 'string', bodyLimit }, (_req, body, done) =>
    done(null, body),
  );

  app.addHook('onSend', async (req, reply, payload) => {
    if (req.url.startsWith('/whip') || req.url.startsWith('/whep')) {
      for (const [k, v] of Object.entries(CORS_HEADERS)) reply.header(k, v);
    }
    return payload;
  });

  const preflight = (allow: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    reply.header('allow', allow);
    if (allow.includes('POST')) reply.header('accept-post', SDP);
    return reply.code(204).send();
  };

  const sessionLookup = (kind: 'whip' | 'whep', streamId: string, id: string) => {
    const s = sessions.get(id);
    if (!s || s.kind !== kind || s.streamId !== streamId) throw sessionNotFound(id);
    return s;
  };

  const admit = (reply: FastifyReply, kind: 'whip' | 'whep', client: string, replacing = false): Ticket => {
    try {
      return sessions.admit(kind, client, replacing);
    } catch (err) {
      if (err instanceof AdmissionError) reply.header('retry-after', String(err.retryAfterS));
      throw err;
    }
  };

  const requireSdp = (req: FastifyRequest): string => {
    if (!isSdp(req)) throw new SfuError('SFU_ERR_UNSUPPORTED_MEDIA_TYPE', `Content-Type must be ${SDP}`);
    if (typeof req.body !== 'string' || req.body.length === 0) throw badSdp('empty body');
    return req.body;
  };

  const notAllowed = (allow: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    reply.header('allow', allow);
    return reply
      .code(405)
      .send(
        new SfuError(
          'SFU_ERR_METHOD_NOT_ALLOWED',
          'Trickle ICE and ICE restarts are not supported: the answer carries every candidate (ICE-lite)',
        ).toJSON(),
      );
  };

  // ---- WHIP ----
  app.options('/whip/:streamId', preflight('POST, OPTIONS'));
  app.options('/whip/:streamId/:sessionId', preflight('DELETE, PATCH, OPTIONS'));
  app.post<{ Params: { streamId: string } }>('/whip/:streamId', { config: offerLimit }, async (req, reply) => {
    const { streamId } = req.params;
    const offer = requireSdp(req);
    const credential = (await opts.authorizePublish?.(req, streamId))?.credential;
    const live = sessions.publisherOf(streamId);
    const replace = credential !== undefined && live?.kind === 'whip' && live.credential === credential;
    const ticket = admit(reply, 'whip', req.ip, replace);
    let stream: Stream;
    let answerSdp: string;
    try {
      ({ stream, answerSdp } = await sfu.publish(streamId, offer, { replace }));
    } catch (err) {
      ticket.release();
      throw err;
    }
    if (replace)
      req.log.warn(
        { streamId },
        "a publisher reconnected with the live session's own credential: the old session was replaced",
      );
    const id = sessions.add(ticket, { kind: 'whip', streamId, stream, client: req.ip, credential });
    try {
      opts.onPublish?.(stream, req);
    } catch (err) {
      req.log.error({ err }, 'onPublish threw');
    }
    if (links.length) reply.header('link', links);
    return reply
      .code(201)
      .header('content-type', SDP)
      .header('location', `/whip/${encodeURIComponent(streamId)}/${id}`)
      .send(answerSdp);
  });
  app.delete<{ Params: { streamId: string; sessionId: string } }>('/whip/:streamId/:sessionId', async (req, reply) => {
    const { streamId, sessionId: id } = req.params;
    const s = sessionLookup('whip', streamId, id);
    await opts.authorizePublish?.(req, streamId);
    // the session leaves the registry on its close
    if (s.kind === 'whip') s.stream.close({ code: 'ended', message: 'the publisher ended the stream' });
    return reply.code(200).send();
  });
  app.patch('/whip/:streamId/:sessionId', notAllowed('DELETE, OPTIONS'));

  // ---- WHEP ----
  app.options('/whep/:streamId', preflight('POST, OPTIONS'));
  app.options('/whep/:streamId/:sessionId', preflight('DELETE, PATCH, OPTIONS'));
  app.post<{ Params: { streamId: string } }>('/whep/:streamId', { config: offerLimit }, async (req, reply) => {
    const { streamId } = req.params;
    const offer = requireSdp(req);
    const auth = (await opts.authorizeView?.(req, streamId)) ?? {};
    const initialGate = opts.initialGate?.(streamId, auth.jurisdiction);
    const ticket = admit(reply, 'whep', req.ip);
    let viewer: Viewer;
    let answerSdp: string;
    try {
      ({ viewer, answerSdp } = await sfu.view(streamId, offer, {
        jurisdiction: auth.jurisdiction,
        viewerId: auth.viewerId,
        initialGate,
      }));
    } catch (err) {
      ticket.release();
      throw err;
    }
    const id = sessions.add(ticket, { kind: 'whep', streamId, viewer, client: req.ip });
    try {
      opts.onView?.(viewer, req);
    } catch (err) {
      req.log.error({ err }, 'onView threw');
    }
    if (links.length) reply.header('link', links);
    return reply
      .code(201)
      .header('content-type', SDP)
      .header('location', `/whep/${encodeURIComponent(streamId)}/${id}`)
      .send(answerSdp);
  });
  app.delete<{ Params: { streamId: string; sessionId: string } }>('/whep/:streamId/:sessionId', async (req, reply) => {
    const { streamId, sessionId: id } = req.params;
    const s = sessionLookup('whep', streamId, id);
    if (s.kind === 'whep') s.viewer.close({ code: 'viewer_left', message: 'the viewer left' });
    return reply.code(200).send();
  });
  app.patch('/whep/:streamId/:sessionId', notAllowed('DELETE, OPTIONS'));
};

const PAGES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'pages');

/** Serves GET /publish and GET /watch (plain HTML with inline JS). */
export const pageRoutes: FastifyPluginAsync = async (app) => {
  for (const name of ['publish', 'watch'] as const) {
    const html = await readFile(join(PAGES_DIR, `${name}.html`), 'utf8');
    app.get(`/${name}`, async (_req, reply) =>
      reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(html),
    );
  }
};
