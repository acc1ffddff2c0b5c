// Shared bits of the synthetic WHIP/WHEP clients: a loopback-only werift peer connection, the HTTP
// exchange of RFC 9725, and the clock.

import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  useAbsSendTime,
  useFIR,
  useNACK,
  usePLI,
  useREMB,
  useSdesMid,
} from 'werift';

export type ClientVideoCodec = 'VP8' | 'H264';

/** Server clock shared by everything in this project (ms). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * This process's nowMs() minus the machine's monotonic clock (ms). `t - MONO_OFFSET_MS` puts a nowMs()
 * time on the one clock every process of the machine shares (each process's timeOrigin differs).
 */
export const MONO_OFFSET_MS = nowMs() - Number(process.hrtime.bigint()) / 1e6;

/** The loopback-only ICE set-up of every synthetic client: host candidates on 127.0.0.1, UDP, no STUN. */
export const loopbackIce = () =>
  ({
    iceServers: [] as { urls: string }[],
    // one transport for all m-lines, as browsers offer: werift's close() leaves the sockets of
    // transports that a BUNDLE answer dropped bound, which kept test processes alive
    bundlePolicy: 'max-bundle',
    iceUseIpv6: false,
    iceUseTcp: false,
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    iceAdditionalHostAddresses: ['127.0.0.1'],
  }) satisfies Partial<ConstructorParameters<typeof RTCPeerConnection>[0]>;

/** The UDP ports a client's peer connection sends and receives on (its host candidates on loopback). */
export function localUdpPorts(pc: RTCPeerConnection): number[] {
  return pc.iceTransports.flatMap((t) =>
    t.connection.localCandidates.filter((c) => c.transport.toLowerCase() === 'udp').map((c) => c.port),
  );
}

export function clientCodecs(video: ClientVideoCodec[]): {
  audio: RTCRtpCodecParameters[];
  video: RTCRtpCodecParameters[];
} {
  const fb = () => [useNACK(), usePLI(), useFIR(), useREMB()];
  const v: RTCRtpCodecParameters[] = [];
  for (const c of video) {
    if (c === 'VP8') {
      v.push(
        new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, payloadType: 96, rtcpFeedback: fb() }),
      );
      v.push(
        new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000, payloadType: 97, parameters: 'apt=96' }),
      );
    } else {
      v.push(
        new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          payloadType: 102,
          parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
          rtcpFeedback: fb(),
        }),
      );
      v.push(
        new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000, payloadType: 103, parameters: 'apt=102' }),
      );
    }
  }
  return {
    video: v,
    audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })],
  };
}

export function clientPeer(video: ClientVideoCodec[]): RTCPeerConnection {
  return new RTCPeerConnection({
    ...loopbackIce(),
    codecs: clientCodecs(video),
    headerExtensions: { video: [useSdesMid(), useAbsSendTime()], audio: [useSdesMid()] },
  });
}

export class WhipHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly code: string | undefined,
  ) {
    super(`HTTP ${status}${code ? ` ${code}` : ''}: ${body.slice(0, 200)}`);
  }
}

/** POSTs an offer (RFC 9725) and returns the answer and the absolute session URL. */
export async function postOffer(
  url: string,
  offer: string,
  token?: string,
  extra: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ answer: string; location: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/sdp', ...extra.headers };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: offer,
    signal: extra.timeoutMs ? AbortSignal.timeout(extra.timeoutMs) : undefined,
  });
  const body = await res.text();
  if (res.status !== 201) {
    let code: string | undefined;
    try {
      code = (JSON.parse(body) as { code?: string }).code;
    } catch {
      code = undefined;
    }
    throw new WhipHttpError(res.status, body, code);
  }
  const loc = res.headers.get('location');
  if (!loc) throw new WhipHttpError(res.status, 'missing Location header', undefined);
  return { answer: body, location: new URL(loc, url).toString() };
}

export async function deleteSession(location: string, token?: string): Promise<number> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    const res = await fetch(location, { method: 'DELETE', headers });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Creates the local offer once ICE gathering is done (no trickle in WHIP/WHEP here). */
export async function gatheredOffer(pc: RTCPeerConnection): Promise<string> {
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 3000);
      pc.iceGatheringStateChange.subscribe((s) => {
        if (s === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }
  return pc.localDescription!.sdp;
}

/**
 * How long the clients wait for ICE + DTLS by default (ms). A DTLS flight lost on a loaded machine is
 * sent again only after a timer that doubles at each loss (RFC 6347 4.2.4.1: 1 s, then 2, 4, ...), so
 * a handshake can complete well after 10 s; a CI run saw a publisher still "DTLS connecting" at 10 s.
 */
export const CONNECT_TIMEOUT_MS = 20_000;

export function waitConnected(pc: RTCPeerConnection, timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
  if (pc.connectionState === 'connected') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () =>
        reject(
          new Error(
            `not connected after ${timeoutMs} ms (state ${pc.connectionState}, ICE ${pc.iceConnectionState}, DTLS ${pc.dtlsTransports.map((d) => d.state).join('/') || 'none'})`,
          ),
        ),
      timeoutMs,
    );
    pc.connectionStateChange.subscribe((s) => {
      if (s === 'connected') {
        clearTimeout(t);
        resolve();
      } else if (s === 'failed' || s === 'closed') {
        clearTimeout(t);
        reject(new Error(`connection ${s}`));
      }
    });
  });
}

/**
 * Resolves when the server ends the session: the peer connection closes or fails, or a DTLS transport
 * closes (the SFU sends close_notify on a kill; werift does not turn that into a connection state).
 */
export function sessionEnded(pc: RTCPeerConnection): Promise<void> {
  return new Promise((resolve) => {
    pc.connectionStateChange.subscribe((s) => {
      if (s === 'closed' || s === 'failed' || s === 'disconnected') resolve();
    });
    for (const dtls of pc.dtlsTransports) {
      dtls.onStateChange.subscribe((s) => {
        if (s === 'closed' || s === 'failed') resolve();
      });
      onDtlsAlert(dtls, resolve);
    }
  });
}

/**
 * Calls `onAlert` when a DTLS alert record (content type 21) reaches a connected transport. werift
 * itself misses some encrypted close_notify alerts from mediasoup's OpenSSL: werift-dtls reads an
 * encrypted alert's fragment as a plain alert first and drops the record when those bytes happen to
 * parse as a fatal one. A killed viewer then noticed only at its ICE consent timeout (26 s; once in
 * a CI run, and 1 viewer in 8 in some local runs). After the handshake a peer sends an alert only to
 * end the session (close_notify) or on a fatal error, so either way the session is over. The
 * socket's datagram handler is private in werift's typings, hence the reflective wrap.
 */
function onDtlsAlert(dtls: RTCPeerConnection['dtlsTransports'][number], onAlert: () => void): void {
  let installed = false;
  // werift makes its DTLS socket when the handshake starts, so this may run before and after it
  const install = (): void => {
    const socket = Reflect.get(Reflect.get(Reflect.get(dtls, 'dtls') ?? {}, 'transport') ?? {}, 'socket') as
      { onData?: (data: Buffer, ...rest: unknown[]) => void } | undefined;
    const inner = socket?.onData;
    if (installed || !socket || typeof inner !== 'function') return;
    installed = true;
    socket.onData = (data: Buffer, ...rest: unknown[]) => {
      if (data[0] === 21 && dtls.state === 'connected') onAlert();
      inner(data, ...rest);
    };
  };
  install();
  dtls.onStateChange.subscribe((state) => {
    if (state === 'connected') install();
  });
}
