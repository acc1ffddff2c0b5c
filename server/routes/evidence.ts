// Evidence clips under /v1/evidence (reviewers and admins): the list, one clip's metadata, the clip
// itself (WebM or Matroska; the ops console plays WebM from a fetched blob), the sampled frames
// the statement cites (JPEG) and the audio windows it cites (WAV). server/evidence.ts owns the files.
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { notFound } from '../errors.ts';
import type { EvidenceMeta, EvidenceRecorder } from '../evidence.ts';
import type { Guard } from './access.ts';
import { AnyObject, IdParam, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface EvidenceRoutesOptions {
  guard: Guard;
  evidence: EvidenceRecorder;
}

const ListQuery = z
  .object({ streamId: z.string().max(200).optional(), statementId: z.string().max(200).optional() })
  .strict();
const FrameParams = z.object({ id: z.string().min(1).max(200), seq: z.coerce.number().int() });

export const evidenceRoutes: FastifyPluginAsync<EvidenceRoutesOptions> = async (app, o) => {
  useZod(app);
  const reviewer = o.guard(['reviewer']);
  const clip = (id: string) => {
    const c = o.evidence.get(id);
    if (!c) throw notFound(`no evidence clip ${id} (never kept, or deleted at the end of its retention)`);
    return c;
  };

  app.get(
    '/v1/evidence',
    {
      onRequest: reviewer,
      schema: {
        tags: ['evidence'],
        summary: 'Evidence clips kept (of a stream or a statement)',
        security: bearer,
        querystring: zs(ListQuery),
        response: { 200: doc(z.object({ clips: z.array(AnyObject) })), ...errorReplies },
      },
    },
    async (req) => {
      const q = req.query as z.output<typeof ListQuery>;
      return { clips: o.evidence.list({ streamId: q.streamId, statementId: q.statementId }) };
    },
  );

  app.get(
    '/v1/evidence/:id/meta',
    {
      onRequest: reviewer,
      schema: {
        tags: ['evidence'],
        summary: "One clip's metadata (statement, jurisdiction, retention, size)",
        security: bearer,
        params: zs(IdParam),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const { path: _path, dir: _dir, ...meta } = clip((req.params as z.output<typeof IdParam>).id);
      return meta;
    },
  );

  app.get(
    '/v1/evidence/:id',
    {
      onRequest: reviewer,
      schema: {
        tags: ['evidence'],
        summary: 'The clip (video/webm or video/x-matroska)',
        security: bearer,
        params: zs(IdParam),
        response: errorReplies,
      },
    },
    async (req, reply) => {
      const c = clip((req.params as z.output<typeof IdParam>).id);
      reply.header('cache-control', 'private, no-store');
      reply.header('content-disposition', `inline; filename="${c.file}"`);
      return reply.type(c.contentType).send(createReadStream(c.path));
    },
  );

  // the samples a statement cites, kept beside its clip: sampled frames (JPEG) and audio windows (WAV)
  const cited = [
    {
      path: 'frames',
      what: 'sampled frame',
      summary: 'A sampled frame the statement cites (JPEG)',
      type: 'image/jpeg',
      of: (c: EvidenceMeta) => c.citedFrames,
    },
    {
      path: 'audio',
      what: 'audio window',
      summary: "An audio window the statement cites (WAV, mono 16-bit PCM at the samplers' rate)",
      type: 'audio/wav',
      of: (c: EvidenceMeta) => c.citedAudio,
    },
  ] as const;
  for (const kind of cited) {
    app.get(
      `/v1/evidence/:id/${kind.path}/:seq`,
      {
        onRequest: reviewer,
        schema: {
          tags: ['evidence'],
          summary: kind.summary,
          security: bearer,
          params: zs(FrameParams),
          response: errorReplies,
        },
      },
      async (req, reply) => {
        const { id, seq } = req.params as z.output<typeof FrameParams>;
        const c = clip(id);
        const kept: readonly { seq: number; file: string }[] = kind.of(c);
        const f = kept.find((x) => x.seq === seq);
        if (!f)
          throw notFound(
            `clip ${id} keeps no ${kind.what} ${seq} (kept: ${kept.map((x) => x.seq).join(', ') || 'none'})`,
          );
        reply.header('cache-control', 'private, no-store');
        return reply.type(kind.type).send(createReadStream(join(c.dir, f.file)));
      },
    );
  }
};
