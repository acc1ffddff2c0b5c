// Known-content admin API: PDQ hash banks and the audio-fingerprint bank of protected recordings.
// Reviewers read, admins change; every change is audited. Hash bank changes are the cluster's: each is
// an edit in the store (appended first, 503 and nothing changed when the store is away) that every
// node applies in order (server/control.ts syncBanks), so an entry added through one node matches on
// all of them and outlives restarts; an audio registration travels as its fingerprint, never the audio.
// BANK_DIR's files are loaded at start beneath those edits; hash lists from hash-sharing programmes
// come in through the text format.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HashBank } from '../../models/hashbank/bank.ts';
import { ModelError } from '../../models/errors.ts';
import { decodePictureFile } from '../../models/pdq/decode.ts';
import { pdqHash, pdqToHex } from '../../models/pdq/pdq.ts';
import { fingerprintToWire } from '../../models/audio/fingerprint.ts';
import { SrvError, notFound } from '../errors.ts';
import type { ModerationStack } from '../moderation.ts';
import type { BankChange, BankHashEntry, Store } from '../store/types.ts';
import { who, type Guard } from './access.ts';
import { bearer, errorReplies as errors, useZod, zs } from './schema.ts';

export interface BankRoutesOptions {
  guard: Guard;
  store: Store;
  /** Applies the cluster's bank edits not yet applied on this node (the one just appended among them). */
  syncBanks: () => Promise<void>;
  nodeId: string;
  /** Undefined when moderation is off: every route answers 503. */
  moderation: ModerationStack | undefined;
}

const HEX64 = /^[0-9a-fA-F]{64}$/;
const BankName = z.object({
  bank: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'bank names are lower-case letters, digits and _'),
});
const HashEntry = z
  .object({
    hash: z.string().regex(HEX64, 'a PDQ hash is 64 hex digits'),
    id: z.string().min(1).max(200).optional(),
    category: z.string().min(1).max(100).optional(),
    source: z.string().min(1).max(500).optional(),
    label: z.string().max(500).optional(),
  })
  .strict();
const PictureQuery = z
  .object({
    id: z.string().min(1).max(200).optional(),
    category: z.string().min(1).max(100).optional(),
    source: z.string().min(1).max(500).optional(),
    label: z.string().max(500).optional(),
  })
  .strict();
const BankEntry = BankName.extend({ id: z.string().min(1).max(200) });
const AddHashes = z.union([HashEntry, z.object({ hashes: z.array(HashEntry).min(1).max(100_000) }).strict()]);
const RecordingQuery = z
  .object({
    name: z.string().regex(/^[\w.-]{1,200}$/),
    category: z.string().min(1).max(100).optional(),
    source: z.string().min(1).max(500).optional(),
  })
  .strict();
/** Largest audio or picture upload (bytes): about 10 minutes of 16-bit 16 kHz mono WAV, or much longer compressed. */
const MAX_AUDIO_BYTES = 20 * 1024 * 1024;

/** An upload decoded by node-av, which reads files: a private temporary folder holds it meanwhile. */
async function withUpload<T>(prefix: string, body: Buffer, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    const file = join(dir, 'upload');
    await writeFile(file, body);
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function bankRoutes(app: FastifyInstance, opts: BankRoutesOptions): Promise<void> {
  useZod(app);
  const { store } = opts;
  const reviewer = opts.guard(['reviewer']);
  const admin = opts.guard(['admin']);
  const stack = (): ModerationStack => {
    if (!opts.moderation)
      throw new SrvError('SRV_ERR_UNAVAILABLE', 'moderation is off on this node (MODERATION=false): no banks');
    return opts.moderation;
  };
  /** Appends a hash bank edit to the cluster's, then applies every edit this node has not (ours among them). */
  const edit = async (e: BankChange & { by: string }): Promise<void> => {
    stack();
    try {
      await store.appendBankEdit({ ...e, at: Date.now(), origin: opts.nodeId });
    } catch (err) {
      throw new SrvError(
        'SRV_ERR_STORE_UNAVAILABLE',
        `the bank edit was not stored, nothing changed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    await opts.syncBanks();
  };
  const entryOf = (e: {
    hash: string;
    id?: string;
    category?: string;
    source?: string;
    label?: string;
  }): BankHashEntry => {
    const hash = e.hash.toLowerCase();
    return {
      hash,
      id: e.id ?? hash,
      ...(e.category ? { category: e.category } : {}),
      ...(e.source ? { source: e.source } : {}),
      ...(e.label ? { meta: { label: e.label } } : {}),
    };
  };
  const audit = (body: Record<string, unknown>): void => {
    void store.appendAudit(body).catch((err: unknown) => app.log.warn({ err }, 'bank audit append'));
  };

  app.addContentTypeParser(['text/plain'], { parseAs: 'string', bodyLimit: 64 * 1024 * 1024 }, (_req, body, done) =>
    done(null, body),
  );
  app.addContentTypeParser(
    /^audio\/|^image\/|^application\/octet-stream$/,
    { parseAs: 'buffer', bodyLimit: MAX_AUDIO_BYTES },
    (_req, body, done) => done(null, body),
  );

  app.get(
    '/v1/banks',
    {
      onRequest: reviewer,
      schema: { tags: ['banks'], summary: 'PDQ hash banks and the audio bank', security: bearer },
    },
    async () => {
      const s = stack();
      return {
        hash: s.hashBanks.names().map((name) => ({ name, size: s.hashBanks.get(name)?.size ?? 0 })),
        audio: [{ name: s.audioBank.name, size: s.audioBank.size }],
      };
    },
  );

  app.get<{ Params: { bank: string } }>(
    '/v1/banks/:bank',
    {
      onRequest: reviewer,
      schema: {
        tags: ['banks'],
        summary: 'A hash bank in the text format (hex, tab, key=value metadata)',
        params: zs(BankName),
        security: bearer,
        response: errors,
      },
    },
    async (req, reply) => {
      const bank = stack().hashBanks.get(req.params.bank);
      if (!bank) throw notFound(`no hash bank ${req.params.bank}`);
      return reply.type('text/plain; charset=utf-8').send(bank.serialize());
    },
  );

  app.post<{ Params: { bank: string }; Body: z.infer<typeof AddHashes> }>(
    '/v1/banks/:bank/hashes',
    {
      onRequest: admin,
      schema: {
        tags: ['banks'],
        summary: 'Add PDQ hashes to a bank (created on first use)',
        params: zs(BankName),
        body: zs(AddHashes),
        security: bearer,
        response: errors,
      },
    },
    async (req, reply) => {
      const added = ('hashes' in req.body ? req.body.hashes : [req.body]).map(entryOf);
      await edit({ kind: 'hashes_added', bank: req.params.bank, entries: added, by: who(req) });
      const bank = stack().hashBanks.bank(req.params.bank);
      audit({
        type: 'bank.hashes_added',
        bank: bank.name,
        by: who(req),
        ids: added.map((e) => e.id).slice(0, 1000),
        count: added.length,
      });
      return reply
        .code(201)
        .send({ bank: bank.name, added: added.length, size: bank.size, ids: added.map((e) => e.id).slice(0, 1000) });
    },
  );

  // The picture itself, hashed here with the PDQ the matcher uses: a client needs no PDQ of its own
  // (the load tester registers its banked picture this way).
  app.post<{ Params: { bank: string }; Querystring: z.infer<typeof PictureQuery>; Body: Buffer }>(
    '/v1/banks/:bank/pictures',
    {
      onRequest: admin,
      schema: {
        tags: ['banks'],
        summary: 'Add a picture to a hash bank by its PDQ hash (any image format FFmpeg reads, as the request body)',
        params: zs(BankName),
        querystring: zs(PictureQuery),
        security: bearer,
        response: errors,
      },
    },
    async (req, reply) => {
      if (!Buffer.isBuffer(req.body) || req.body.length === 0)
        throw new SrvError('SRV_ERR_BAD_REQUEST', 'send the picture as the body (image/* or application/octet-stream)');
      stack();
      const picture = await withUpload('msfu-picture-', req.body, (file) =>
        decodePictureFile(file).catch((err: unknown) => {
          throw new SrvError(
            'SRV_ERR_BAD_REQUEST',
            `the body is not a picture FFmpeg can decode: ${err instanceof Error ? err.message : String(err)}`,
          );
        }),
      );
      const { hash, quality } = pdqHash(picture);
      const q = req.query;
      const entry = entryOf({ hash: pdqToHex(hash), ...q });
      await edit({ kind: 'hashes_added', bank: req.params.bank, entries: [entry], by: who(req) });
      const bank = stack().hashBanks.bank(req.params.bank);
      audit({ type: 'bank.hashes_added', bank: bank.name, by: who(req), ids: [entry.id], count: 1, from: 'picture' });
      return reply.code(201).send({
        bank: bank.name,
        added: 1,
        size: bank.size,
        ids: [entry.id],
        hash: pdqToHex(hash),
        quality,
        width: picture.width,
        height: picture.height,
      });
    },
  );

  app.post<{ Params: { bank: string }; Body: string }>(
    '/v1/banks/:bank/import',
    {
      onRequest: admin,
      schema: {
        tags: ['banks'],
        summary: 'Import a hash list in the text format (text/plain)',
        params: zs(BankName),
        security: bearer,
        response: errors,
      },
    },
    async (req, reply) => {
      if (typeof req.body !== 'string') throw new SrvError('SRV_ERR_BAD_REQUEST', 'send the hash list as text/plain');
      let parsed: HashBank;
      try {
        parsed = HashBank.parse(req.body, { name: req.params.bank });
      } catch (err) {
        if (err instanceof ModelError) throw new SrvError('SRV_ERR_BAD_REQUEST', err.message);
        throw err;
      }
      const entries: BankHashEntry[] = [...parsed.entries()].map((e) => ({
        hash: pdqToHex(e.hash),
        id: e.id,
        category: e.category,
        ...(e.source !== undefined ? { source: e.source } : {}),
        ...(e.meta ? { meta: e.meta } : {}),
      }));
      await edit({ kind: 'hashes_added', bank: req.params.bank, entries, by: who(req) });
      const bank = stack().hashBanks.bank(req.params.bank);
      const added = entries.length;
      audit({ type: 'bank.imported', bank: bank.name, by: who(req), count: added });
      return reply.code(201).send({ bank: bank.name, added, size: bank.size });
    },
  );

  app.delete<{ Params: { bank: string; id: string } }>(
    '/v1/banks/:bank/hashes/:id',
    {
      onRequest: admin,
      schema: {
        tags: ['banks'],
        summary: 'Remove one entry from a hash bank',
        params: zs(BankEntry),
        security: bearer,
        response: errors,
      },
    },
    async (req, reply) => {
      const bank = stack().hashBanks.get(req.params.bank);
      if (!bank?.get(req.params.id)) throw notFound(`no entry ${req.params.id} in hash bank ${req.params.bank}`);
      await edit({ kind: 'hash_removed', bank: req.params.bank, id: req.params.id, by: who(req) });
      audit({ type: 'bank.hash_removed', bank: bank.name, by: who(req), id: req.params.id });
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { bank: string } }>(
    '/v1/audio-banks/:bank/recordings',
    {
      onRequest: reviewer,
      schema: {
        tags: ['banks'],
        summary: 'Protected recordings in the audio bank',
        params: zs(BankName),
        security: bearer,
        response: errors,
      },
    },
    async (req) => ({
      bank: audioBankNamed(stack(), req.params.bank).name,
      recordings: audioBankNamed(stack(), req.params.bank).list(),
    }),
  );

  app.post<{ Params: { bank: string }; Querystring: z.infer<typeof RecordingQuery>; Body: Buffer }>(
    '/v1/audio-banks/:bank/recordings',
    {
      onRequest: admin,
      schema: {
        tags: ['banks'],
        summary: 'Register a protected recording (any audio format FFmpeg reads, as the request body)',
        params: zs(BankName),
        querystring: zs(RecordingQuery),
        security: bearer,
        response: errors,
      },
    },
    async (req, reply) => {
      const bank = audioBankNamed(stack(), req.params.bank);
      if (!Buffer.isBuffer(req.body) || req.body.length === 0)
        throw new SrvError(
          'SRV_ERR_BAD_REQUEST',
          'send the recording as the body (audio/* or application/octet-stream)',
        );
      const { fingerprint, durationSec } = await withUpload('msfu-audio-', req.body, (file) =>
        bank.fingerprintFile(file).catch((err: unknown) => {
          throw new SrvError(
            'SRV_ERR_BAD_REQUEST',
            `the body is not audio FFmpeg can decode: ${err instanceof Error ? err.message : String(err)}`,
          );
        }),
      );
      const q = req.query;
      const recording = {
        id: q.name,
        title: q.name,
        durationSec,
        fingerprint: fingerprintToWire(fingerprint),
        ...(q.category ? { category: q.category } : {}),
        ...(q.source ? { source: q.source } : {}),
      };
      await edit({ kind: 'recording_added', bank: bank.name, recording, by: who(req) });
      const rec = bank.list().find((r) => r.id === q.name);
      if (!rec) throw new SrvError('SRV_ERR_INTERNAL', `recording ${q.name} was stored but is not in the bank`);
      audit({ type: 'audio_bank.registered', bank: bank.name, by: who(req), id: rec.id, durationSec: rec.durationSec });
      return reply.code(201).send(rec);
    },
  );

  app.delete<{ Params: { bank: string; id: string } }>(
    '/v1/audio-banks/:bank/recordings/:id',
    {
      onRequest: admin,
      schema: {
        tags: ['banks'],
        summary: 'Remove a protected recording',
        params: zs(BankEntry),
        security: bearer,
        response: errors,
      },
    },
    async (req, reply) => {
      const bank = audioBankNamed(stack(), req.params.bank);
      if (!bank.list().some((r) => r.id === req.params.id))
        throw notFound(`no recording ${req.params.id} in audio bank ${bank.name}`);
      await edit({ kind: 'recording_removed', bank: bank.name, id: req.params.id, by: who(req) });
      audit({ type: 'audio_bank.removed', bank: bank.name, by: who(req), id: req.params.id });
      return reply.code(204).send();
    },
  );
}

function audioBankNamed(stack: ModerationStack, name: string): ModerationStack['audioBank'] {
  if (stack.audioBank.name !== name) throw notFound(`no audio bank ${name} (this node has ${stack.audioBank.name})`);
  return stack.audioBank;
}
