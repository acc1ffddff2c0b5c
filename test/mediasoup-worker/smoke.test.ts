// Smoke test of the mediasoup-worker binary that `npm run mediasoup:worker` builds (Debian's
// libsrtp 2.5, flatbuffers 2.0.8, abseil instead of mediasoup's pinned subprojects): a real worker
// from Node runs a WebRtcServer + WebRtcTransport, RTP through two SRTP PlainTransports for every
// crypto suite, DirectTransport produce/consume and pipeToRouter between two workers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';

const SUITES: types.SrtpCryptoSuite[] = [
  'AES_CM_128_HMAC_SHA1_80',
  'AES_CM_128_HMAC_SHA1_32',
  'AEAD_AES_128_GCM',
  'AEAD_AES_256_GCM',
];

const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

const PT = 100;
const SSRC = 11111111;

const missing = existsSync(mediasoup.workerBin)
  ? undefined
  : `mediasoup-worker binary not found at ${mediasoup.workerBin}: run \`npm run mediasoup:worker\``;
const optional = process.env.MEDIASOUP_WORKER_OPTIONAL === '1';

// Without the binary: a failure saying what to run, or (MEDIASOUP_WORKER_OPTIONAL=1) only skips.
if (missing && !optional) {
  test('mediasoup-worker binary is present', () => assert.fail(missing));
}

// An Opus RTP packet: 12-byte header, then `payload`.
function rtpPacket(seq: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = PT;
  header.writeUInt16BE(seq & 0xffff, 2);
  header.writeUInt32BE((seq * 960) >>> 0, 4);
  header.writeUInt32BE(SSRC, 8);
  return Buffer.concat([header, payload]);
}

function rtpPayload(packet: Buffer): Buffer {
  let offset = 12 + 4 * (packet[0] & 0x0f);
  if (packet[0] & 0x10) offset += 4 + 4 * packet.readUInt16BE(offset + 2);
  return packet.subarray(offset);
}

// Sends packets through `producer` every 20 ms until `consumer` emits one carrying the same
// payload (the first ones may race the transports' setup), or fails after `waitMs`.
async function expectRtpThrough(producer: types.Producer, consumer: types.Consumer, label: string, waitMs = 5000) {
  const payload = Buffer.from(`opus-${label}-${Math.random()}`);
  let seq = 1;
  let timer: NodeJS.Timeout | undefined;
  let timeout: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      consumer.on('rtp', (packet: Buffer) => {
        if (rtpPayload(packet).equals(payload)) resolve();
      });
      timer = setInterval(() => producer.send(rtpPacket(seq++, payload)), 20);
      timeout = setTimeout(() => reject(new Error(`${label}: no RTP received after ${seq - 1} packets`)), waitMs);
    });
  } finally {
    clearInterval(timer);
    clearTimeout(timeout);
    consumer.removeAllListeners('rtp');
  }
}

describe('mediasoup worker', { skip: missing ?? false, timeout: 60_000 }, () => {
  let worker1: types.Worker;
  let worker2: types.Worker;
  let router: types.Router;
  let source: types.DirectTransport;
  let sink: types.DirectTransport;
  let producer: types.Producer;

  before(async () => {
    worker1 = await mediasoup.createWorker({ logLevel: 'warn' });
    worker2 = await mediasoup.createWorker({ logLevel: 'warn' });
    router = await worker1.createRouter({ mediaCodecs: MEDIA_CODECS });
    source = await router.createDirectTransport();
    sink = await router.createDirectTransport();
    producer = await source.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [{ mimeType: 'audio/opus', payloadType: PT, clockRate: 48000, channels: 2 }],
        encodings: [{ ssrc: SSRC }],
      },
    });
  });

  after(() => {
    worker1?.close();
    worker2?.close();
  });

  test('worker answers a dump', async () => {
    const dump = await worker1.dump();
    assert.equal(dump.pid, worker1.pid);
    assert.deepEqual(dump.routerIds, [router.id]);
  });

  test('WebRtcServer on 127.0.0.1 (udp + tcp) and a WebRtcTransport on it', async () => {
    const webRtcServer = await worker1.createWebRtcServer({
      listenInfos: [
        { protocol: 'udp', ip: '127.0.0.1', port: 0 },
        { protocol: 'tcp', ip: '127.0.0.1', port: 0 },
      ],
    });
    const transport = await router.createWebRtcTransport({ webRtcServer, enableUdp: true, enableTcp: true });
    const protocols = transport.iceCandidates.map((c) => c.protocol).sort();
    assert.deepEqual(protocols, ['tcp', 'udp']);
    for (const candidate of transport.iceCandidates) {
      assert.equal(candidate.address, '127.0.0.1');
      assert.ok(candidate.port > 0, `${candidate.protocol} candidate has a real port`);
    }
    assert.equal(transport.dtlsParameters.fingerprints.length > 0, true);
    const dump = await webRtcServer.dump();
    assert.equal(dump.udpSockets.length, 1);
    assert.equal(dump.tcpServers.length, 1);
    assert.deepEqual(dump.webRtcTransportIds, [transport.id]);
    transport.close();
    webRtcServer.close();
  });

  test('DirectTransport producer.send() reaches a DirectTransport consumer', async () => {
    const consumer = await sink.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
    await expectRtpThrough(producer, consumer, 'direct');
    consumer.close();
  });

  // Two SRTP PlainTransports on `router`: producer -> sender -> (UDP) -> receiver -> consumer on `sink`.
  async function srtpPair(suite: types.SrtpCryptoSuite, wrongKey = false) {
    const options: types.PlainTransportOptions = {
      listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
      rtcpMux: true,
      comedia: false,
      enableSrtp: true,
      srtpCryptoSuite: suite,
    };
    const sender = await router.createPlainTransport(options);
    const receiver = await router.createPlainTransport(options);
    assert.equal(sender.srtpParameters?.cryptoSuite, suite);
    // Each side decrypts with the key the other side encrypts with (or, for the negative check,
    // with its own key, which cannot decrypt the sender's packets).
    await sender.connect({ ip: '127.0.0.1', port: receiver.tuple.localPort, srtpParameters: receiver.srtpParameters });
    await receiver.connect({
      ip: '127.0.0.1',
      port: sender.tuple.localPort,
      srtpParameters: wrongKey ? receiver.srtpParameters : sender.srtpParameters,
    });
    const outbound = await sender.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
    const inbound = await receiver.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: outbound.rtpParameters.codecs,
        encodings: outbound.rtpParameters.encodings!.map(({ ssrc }) => ({ ssrc })),
      },
    });
    const consumer = await sink.consume({ producerId: inbound.id, rtpCapabilities: router.rtpCapabilities });
    const close = () => {
      consumer.close();
      sender.close();
      receiver.close();
    };
    return { sender, receiver, consumer, close };
  }

  for (const suite of SUITES) {
    test(`RTP through two PlainTransports with SRTP ${suite}`, async () => {
      const { receiver, consumer, close } = await srtpPair(suite);
      await expectRtpThrough(producer, consumer, suite);
      const [stats] = await receiver.getStats();
      assert.ok(stats.rtpBytesReceived > 0, 'the receiving PlainTransport got RTP');
      close();
    });
  }

  test('SRTP with the wrong key: the receiving PlainTransport drops every packet', async () => {
    const { receiver, consumer, close } = await srtpPair('AEAD_AES_128_GCM', true);
    await assert.rejects(expectRtpThrough(producer, consumer, 'wrong-key', 1000), /no RTP received/);
    const [stats] = await receiver.getStats();
    assert.ok(stats.bytesReceived > 0, 'packets did arrive');
    assert.equal(stats.rtpBytesReceived, 0, 'none of them decrypted');
    close();
  });

  test('pipeToRouter to a router on a second worker', async () => {
    const router2 = await worker2.createRouter({ mediaCodecs: MEDIA_CODECS });
    const { pipeProducer } = await router.pipeToRouter({ producerId: producer.id, router: router2 });
    assert.ok(pipeProducer);
    const sink2 = await router2.createDirectTransport();
    const consumer = await sink2.consume({ producerId: pipeProducer.id, rtpCapabilities: router2.rtpCapabilities });
    await expectRtpThrough(producer, consumer, 'pipe');
    router2.close();
  });
});
