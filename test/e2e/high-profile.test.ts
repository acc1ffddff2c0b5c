// OBS's WHIP output announces H.264 as profile-level-id=42e01f (Constrained Baseline) whatever x264
// really makes: High profile by default (issue 15). The samplers decode by the bitstream, not by the
// SDP; this proves the whole moderation path does too, on both engines: a banked picture sent as High
// profile by an OBS-shaped publisher that negotiated 42e01f is matched (PDQ against the bank) and the
// stream is killed, with a statement of reasons, as the same picture in VP8 is in moderation.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bankedPicture } from '../../loadtest/media/scenes.ts';
import { bankedPicturePpm } from '../../loadtest/register.ts';
import { parseOffer } from '../../sfu/sdp.ts';
import type { CloseReason } from '../../sfu/types.ts';
import { ObsShapedPublisher } from '../interop/obs-publisher.ts';
import { ENGINES } from '../sfu/helpers.ts';
import { CLIP, startE2EServer, until, type E2EServer } from './helpers.ts';

for (const engine of ENGINES.filter((e) => !process.env.E2E_ENGINE || e === process.env.E2E_ENGINE)) {
  describe(`a High-profile stream negotiated as 42e01f is moderated [${engine}]`, { timeout: 180_000 }, () => {
    let e2e: E2EServer;
    before(async () => {
      // hashes only: the kill comes from PDQ against the bank, the path every modality shares up to the decoder
      e2e = await startE2EServer({ SFU_ENGINE: engine, INFERENCE_BACKEND: 'none', OCR: 'false', VAD: 'false' });
      const r = await fetch(
        `${e2e.url}/v1/banks/known_bad/pictures?category=known_bad_match&source=e2e&id=e2e-high-profile`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${e2e.adminToken}`, 'content-type': 'image/x-portable-pixmap' },
          body: bankedPicturePpm(CLIP),
        },
      );
      assert.equal(r.status, 201, await r.text());
    });
    after(async () => {
      await e2e?.close();
    });

    test('a banked picture in High profile kills the stream, with its statement', async () => {
      const streamId = `obs-high-${engine}`;
      const token = await e2e.token({ role: 'publisher', sub: 'obs-streamer', streamId });
      const pub = await ObsShapedPublisher.connect(`${e2e.url}/whip/${streamId}`, {
        profile: 'high',
        token,
        picture: { rgb: bankedPicture(CLIP.width, CLIP.height), width: CLIP.width, height: CLIP.height },
      });
      try {
        const video = parseOffer(pub.offer).media.find((m) => m.kind === 'video')!;
        assert.match(
          video.codecs[0]!.fmtp,
          /profile-level-id=42e01f/,
          'the offer says Constrained Baseline, as OBS does',
        );
        let reason: CloseReason | undefined;
        e2e.server.sfu.getStream(streamId)!.on('close', (r) => (reason ??= r));
        pub.start();
        await until(() => reason !== undefined, 60_000, `the stream ${streamId} to be closed by moderation`);
        assert.equal(reason!.code, 'killed', `closed as killed: ${JSON.stringify(reason)}`);
        const decisions = await e2e.server.store.listDecisions({ streamId });
        const kill = decisions.find((d) => d.action === 'kill_stream' && d.source === 'automated');
        assert.ok(kill, `an automated kill decision: ${JSON.stringify(decisions.map((d) => [d.source, d.action]))}`);
        assert.ok(kill.statementId, 'the kill carries a statement of reasons');
        const statement = await e2e.server.store.getStatement(kill.statementId);
        assert.ok(statement, 'the statement is stored');
        assert.ok(
          JSON.stringify(statement).includes('known_bad_match'),
          'the statement names the known-content category',
        );
      } finally {
        await pub.stop();
      }
    });
  });
}
