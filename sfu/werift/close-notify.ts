// Ending a session fast: werift's close() only drops its sockets, so the other side would wait for
// ICE consent to expire (~30 s) before it notices. A DTLS close_notify alert (RFC 6347, RFC 5246 7.2.1)
// tells browsers and werift peers at once. werift has no API for it; the record is built here with the
// transport's own record state and cipher, reached reflectively because they are private.

import type { RTCPeerConnection } from 'werift';

interface CipherSuite {
  encrypt(
    sessionType: unknown,
    data: Buffer,
    header: { type: number; version: number; epoch: number; sequenceNumber: number },
  ): Buffer;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
}

const ALERT = 21;

/**
 * Sends close_notify on every connected DTLS transport, then closes the connection a moment later
 * (closing the socket at once would cancel the datagram still queued in libuv). Never throws.
 */
export function closeWithNotify(pc: RTCPeerConnection, lingerMs = 100): void {
  void sendCloseNotify(pc).finally(() => {
    setTimeout(() => {
      pc.close().catch((err: unknown) => void err);
    }, lingerMs).unref();
  });
}

/** Sends close_notify on every connected DTLS transport of the connection. Best effort; never throws. */
export async function sendCloseNotify(pc: RTCPeerConnection): Promise<void> {
  await Promise.all(
    pc.dtlsTransports.map(async (transport) => {
      try {
        if (transport.state !== 'connected') return;
        const socket = obj(Reflect.get(transport, 'dtls'));
        const ctx = obj(socket?.dtls);
        const cipherCtx = obj(socket?.cipher);
        const suite = obj(cipherCtx?.cipher) as CipherSuite | undefined;
        const link = obj(socket?.transport);
        const version = obj(ctx?.version);
        if (
          !ctx ||
          !cipherCtx ||
          !suite ||
          typeof suite.encrypt !== 'function' ||
          !link ||
          typeof link.send !== 'function' ||
          !version
        )
          return;
        const seq = (Number(ctx.recordSequenceNumber) || 0) + 1;
        ctx.recordSequenceNumber = seq;
        const epoch = Number(ctx.epoch) || 0;
        const major = Number(version.major);
        const minor = Number(version.minor);
        const fragment = suite.encrypt(cipherCtx.sessionType, Buffer.from([1, 0]), {
          type: ALERT,
          version: (major << 8) | minor,
          epoch,
          sequenceNumber: seq,
        });
        const record = Buffer.alloc(13 + fragment.length);
        record[0] = ALERT;
        record[1] = major;
        record[2] = minor;
        record.writeUInt16BE(epoch, 3);
        record.writeUIntBE(seq, 5, 6);
        record.writeUInt16BE(fragment.length, 11);
        fragment.copy(record, 13);
        await (link.send as (b: Buffer) => Promise<unknown>).call(link, record);
      } catch (err) {
        void err;
      }
    }),
  );
}
