// SDP <-> mediasoup parameters for WHIP/WHEP, where the server always answers. mediasoup speaks RTP
// parameters, not SDP: an offer becomes a producer's RtpParameters (publishers) or a consumer's
// RtpCapabilities (viewers), and the answer is written here from the transport's ICE/DTLS
// parameters and the producers'/consumers' RTP parameters.
//
// Two rules shape the answers:
// - A viewer receives with the payload types of its own offer (RFC 3264 6.1; Chrome drops packets of
//   a payload type its offer did not map). mediasoup sends every consumer of a router with the
//   router's payload types, so viewers consume from a router whose codecs carry their payload types
//   (sfu/mediasoup/stream.ts editions); RTX is not negotiated with viewers (its payload type cannot be
//   chosen in mediasoup), NACKs are answered with plain retransmissions instead.
// - DTLS roles follow RFC 8842: active -> passive, passive -> active, actpass -> active.

import type {
  DtlsParameters,
  IceCandidate,
  IceParameters,
  MediaKind as MsKind,
  RtpCapabilities,
  RtpCodecCapability,
  RtpCodecParameters,
  RtpHeaderExtensionParameters,
  RtpHeaderExtensionUri,
  RtpParameters,
  RtcpFeedback,
} from 'mediasoup/types';
import { badSdp } from '../errors.ts';
import { fmtpParams, offerSetup, simulcastRids, transportAttribute } from '../sdp.ts';
import type { ChosenCodec, MediaSection, ParsedOffer } from '../sdp.ts';

/** The remote side's DTLS and ICE parameters from an offer. */
export interface OfferTransport {
  /** The remote DTLS role for transport.connect(): the opposite of the role the answer takes. */
  remoteRole: 'client' | 'server';
  /** What the answer writes in a=setup. */
  answerSetup: 'active' | 'passive';
  fingerprints: DtlsParameters['fingerprints'];
}

function attrs(lines: readonly string[], name: string): string[] {
  const prefix = `a=${name}:`;
  return lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length).trim());
}

const FINGERPRINT_ALGORITHMS = new Set(['sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512']);

/**
 * DTLS role and fingerprints, media-level attributes over session-level ones (RFC 8866), bundle-only
 * sections reading their group's (sfu/sdp.ts transportAttribute); roles per RFC 8842 (offerSetup).
 */
export function offerTransport(offer: ParsedOffer, sections: readonly MediaSection[]): OfferTransport {
  const fingerprints: DtlsParameters['fingerprints'] = [];
  for (const fp of transportAttribute(offer, sections, 'fingerprint')) {
    const [algorithm, value] = fp.split(/\s+/);
    const alg = algorithm?.toLowerCase();
    if (alg && value && FINGERPRINT_ALGORITHMS.has(alg))
      fingerprints.push({
        algorithm: alg as DtlsParameters['fingerprints'][number]['algorithm'],
        value: value.toUpperCase(),
      });
  }
  if (fingerprints.length === 0) throw badSdp('no a=fingerprint (DTLS-SRTP is required)');
  const { answer } = offerSetup(offer, sections);
  // the remote side takes the other role: an answer that is active (DTLS client) faces a server
  return { remoteRole: answer === 'active' ? 'server' : 'client', answerSetup: answer, fingerprints };
}

/** a=fmtp as mediasoup codec parameters: numbers where the value is a plain decimal, strings otherwise. */
export function codecParameters(fmtp: string): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [k, v] of fmtpParams(fmtp)) {
    // profile-level-id is hexadecimal even when it happens to be all digits
    out[k] = k !== 'profile-level-id' && /^\d+$/.test(v) ? Number(v) : v;
  }
  return out;
}

function formatParameters(parameters: Record<string, unknown> | undefined): string {
  return Object.entries(parameters ?? {})
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(';');
}

/** Feedback the SFU takes part in, from what the offer lists for one payload type. */
export function offeredFeedback(
  section: MediaSection,
  payloadType: number,
  kind: 'audio' | 'video',
  allow: ReadonlySet<string>,
): RtcpFeedback[] {
  const out: RtcpFeedback[] = [];
  for (const line of [...attrs(section.lines, 'rtcp-fb')]) {
    const [pt, type, parameter] = line.split(/\s+/);
    if (pt !== String(payloadType) && pt !== '*') continue;
    if (!type) continue;
    const key = parameter ? `${type} ${parameter}` : type;
    if (!allow.has(key)) continue;
    if (kind === 'audio' && type !== 'transport-cc' && type !== 'nack') continue;
    if (!out.some((f) => f.type === type && (f.parameter ?? '') === (parameter ?? '')))
      out.push({ type, parameter: parameter ?? '' });
  }
  return out;
}

const PUBLISHER_FEEDBACK = new Set(['nack', 'nack pli', 'ccm fir', 'goog-remb', 'transport-cc']);
const VIEWER_FEEDBACK = new Set(['nack', 'nack pli', 'ccm fir']);

/** Header extensions the SFU accepts from publishers (mediasoup reads mid for demux, the rest for BWE and timing). */
const PUBLISHER_EXTENSIONS: ReadonlySet<string> = new Set<RtpHeaderExtensionUri>([
  'urn:ietf:params:rtp-hdrext:sdes:mid',
  'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
  'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'urn:3gpp:video-orientation',
  'urn:ietf:params:rtp-hdrext:toffset',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time',
]);

function offeredExtensions(section: MediaSection): RtpHeaderExtensionParameters[] {
  const out: RtpHeaderExtensionParameters[] = [];
  for (const line of attrs(section.lines, 'extmap')) {
    const m = /^(\d+)(?:\/\w+)? (\S+)/.exec(line);
    if (!m) continue;
    const id = Number(m[1]);
    const uri = m[2]!;
    if (id < 1 || id > 14 || !PUBLISHER_EXTENSIONS.has(uri)) continue;
    out.push({ uri: uri as RtpHeaderExtensionUri, id });
  }
  return out;
}

function mimeOf(codec: { kind: 'audio' | 'video'; name: string }): string {
  return `${codec.kind}/${codec.name}`;
}

/** The SSRCs a publisher announces for one m-section: the media SSRC and its RTX SSRC (a=ssrc-group:FID). */
function offeredSsrcs(section: MediaSection): { ssrc?: number; rtxSsrc?: number; cname?: string } {
  const fid = attrs(section.lines, 'ssrc-group')
    .map((g) => g.split(/\s+/))
    .find((g) => g[0] === 'FID');
  const ssrcLines = attrs(section.lines, 'ssrc');
  const cname = ssrcLines.map((l) => /^\d+ cname:(\S+)/.exec(l)?.[1]).find(Boolean);
  if (fid && fid.length >= 3) return { ssrc: Number(fid[1]), rtxSsrc: Number(fid[2]), cname };
  const first = ssrcLines.map((l) => Number(l.split(' ')[0])).find((n) => Number.isInteger(n) && n > 0);
  return { ssrc: first, cname };
}

/** The CNAME a publisher announces (a=ssrc:<ssrc> cname:), from its first m-section that has one. */
export function offeredCname(sections: readonly MediaSection[]): string | undefined {
  for (const s of sections) {
    const cname = offeredSsrcs(s).cname;
    if (cname) return cname;
  }
  return undefined;
}

/**
 * A publisher's m-section as the RtpParameters of the producer that receives it. `cname` is the one
 * CNAME of all the publisher's tracks: mediasoup estimates one remote clock per CNAME from the sender
 * reports, so tracks that share it keep the publisher's audio/video relation (lip sync) at viewers.
 */
export function producerParameters(section: MediaSection, chosen: ChosenCodec, cname: string): RtpParameters {
  const kind = chosen.kind;
  const fb = offeredFeedback(section, chosen.payloadType, kind, PUBLISHER_FEEDBACK);
  const codecs: RtpCodecParameters[] = [
    {
      mimeType: mimeOf(chosen),
      payloadType: chosen.payloadType,
      clockRate: chosen.clockRate,
      channels: kind === 'audio' ? (chosen.channels ?? 2) : undefined,
      parameters: codecParameters(chosen.fmtp),
      rtcpFeedback: fb,
    },
  ];
  const rids = kind === 'video' ? simulcastRids(section) : [];
  const { ssrc, rtxSsrc } = rids.length > 0 ? {} : offeredSsrcs(section);
  const useRtx = chosen.rtxPayloadType !== undefined && (rtxSsrc !== undefined || ssrc === undefined);
  if (useRtx)
    codecs.push({
      mimeType: `${kind}/rtx`,
      payloadType: chosen.rtxPayloadType!,
      clockRate: chosen.clockRate,
      parameters: { apt: chosen.payloadType },
      rtcpFeedback: [],
    });
  const single =
    ssrc !== undefined ? { ssrc, ...(useRtx && rtxSsrc !== undefined ? { rtx: { ssrc: rtxSsrc } } : {}) } : {};
  return {
    mid: section.mid,
    codecs,
    headerExtensions: offeredExtensions(section).filter(
      (e) =>
        (kind === 'video' || e.uri !== 'urn:3gpp:video-orientation') &&
        (rids.length > 0 || !e.uri.includes('rtp-stream-id')),
    ),
    // a simulcast section's layers are told apart by rid (RFC 8852); OBS announces one a=ssrc for three
    encodings: rids.length > 0 ? simulcastLayerOrder(rids).map((rid) => ({ rid })) : [single],
    rtcp: { cname, reducedSize: section.lines.includes('a=rtcp-rsize') },
  };
}

/**
 * The rids of a simulcast section from the lowest layer to the highest, mediasoup's encoding order
 * (spatial layer 0 the smallest). SDP does not say which layer is which: numeric rids are read as
 * OBS writes them (the encoder index, rid 0 the full output resolution, each next one smaller),
 * others in the offered order (mediasoup-client and LiveKit offer low to high). The stream corrects
 * a wrong guess from the layers' measured bitrates (MediasoupStream #pickLayer).
 */
export function simulcastLayerOrder(rids: readonly string[]): string[] {
  if (rids.every((r) => /^\d+$/.test(r))) return [...rids].sort((a, b) => Number(b) - Number(a));
  return [...rids];
}

/**
 * What a viewer can receive for one m-section, as RtpCapabilities for transport.consume(): the codec
 * matched to the stream's, with the viewer's payload type, no RTX, and no header extensions (without
 * abs-send-time or transport-cc no bandwidth estimate can make mediasoup drop to the slate layer).
 */
export function viewerCapabilities(section: MediaSection, match: ChosenCodec): RtpCapabilities {
  const codec: RtpCodecCapability = {
    ...routerCodec(match),
    rtcpFeedback: offeredFeedback(section, match.payloadType, match.kind, VIEWER_FEEDBACK),
  };
  return { codecs: [codec], headerExtensions: [] };
}

/**
 * The codec of a viewer's edition router: the viewer's payload type with the stream's H264 parameters.
 * mediasoup pipes a producer only into a router whose H264 profile is the producer's (FFmpeg's whip
 * muxer announces Baseline 420014, werift and many viewers offer only Constrained Baseline 42e01f);
 * decoders go by the bitstream, and the answer still writes the viewer's own a=fmtp (writeAnswer).
 */
export function editionCodec(match: ChosenCodec, source: ChosenCodec | undefined): ChosenCodec {
  return match.name === 'H264' && source?.name === 'H264' ? { ...match, fmtp: source.fmtp } : match;
}

/** The router codec for a chosen codec: the given payload type, the offered parameters. */
export function routerCodec(codec: ChosenCodec): RtpCodecCapability {
  return {
    kind: codec.kind as MsKind,
    mimeType: mimeOf(codec),
    preferredPayloadType: codec.payloadType,
    clockRate: codec.clockRate,
    channels: codec.kind === 'audio' ? (codec.channels ?? 2) : undefined,
    parameters: codecParameters(codec.fmtp),
    rtcpFeedback: [],
  };
}

/** Audio codecs first: their payload types are taken before mediasoup picks the video RTX payload type. */
export function audioFirst(codecs: readonly ChosenCodec[]): ChosenCodec[] {
  return [...codecs.filter((c) => c.kind === 'audio'), ...codecs.filter((c) => c.kind !== 'audio')];
}

/** One answered m-section. */
export interface AnswerSection {
  section: MediaSection;
  direction: 'recvonly' | 'sendonly';
  rtpParameters: RtpParameters;
  /** For recvonly simulcast sections: the rids taken, in the offer's order (every one, or OBS fails). */
  rids?: readonly string[];
  /** For sendonly sections: the SSRC the viewer receives, with its stream and track ids. */
  send?: { ssrc: number; cname: string; streamId: string; trackId: string };
}

export interface AnswerTransport {
  ice: IceParameters;
  candidates: readonly IceCandidate[];
  dtls: DtlsParameters;
  setup: 'active' | 'passive';
}

let sessionVersion = 0;

function candidateLine(c: IceCandidate, component: number): string {
  const tcp = c.protocol === 'tcp' ? ` tcptype ${c.tcpType ?? 'passive'}` : '';
  return `a=candidate:${c.foundation} ${component} ${c.protocol} ${c.priority} ${c.address} ${c.port} typ host${tcp}`;
}

/**
 * The SDP answer: one BUNDLE transport (mediasoup's WebRtcTransport), ICE-lite, every candidate (no
 * trickle). Sections not answered are rejected with port 0 and keep their mid.
 */
export function writeAnswer(
  offer: ParsedOffer,
  answered: readonly AnswerSection[],
  transport: AnswerTransport,
): string {
  const byMid = new Map(answered.map((a) => [a.section, a]));
  const bundled = answered.map((a) => a.section.mid).filter((m): m is string => m !== undefined);
  const sha256 = transport.dtls.fingerprints.find((f) => f.algorithm === 'sha-256') ?? transport.dtls.fingerprints[0];
  if (!sha256) throw badSdp('internal: transport without DTLS fingerprint');
  const address = transport.candidates[0]?.address ?? '0.0.0.0';
  const lines = ['v=0', `o=- ${Date.now()} ${++sessionVersion} IN IP4 ${address}`, 's=-', 't=0 0', 'a=ice-lite'];
  if (bundled.length > 0) lines.push(`a=group:BUNDLE ${bundled.join(' ')}`);
  lines.push('a=msid-semantic: WMS *');
  for (const section of offer.media) {
    const a = byMid.get(section);
    if (!a) {
      const parts = section.lines[0]!.split(' ');
      parts[1] = '0';
      lines.push(parts.join(' '), 'c=IN IP4 0.0.0.0');
      if (section.mid !== undefined) lines.push(`a=mid:${section.mid}`);
      lines.push('a=inactive');
      continue;
    }
    const p = a.rtpParameters;
    const pts = p.codecs.map((c) => c.payloadType);
    lines.push(
      `m=${section.kind} 9 ${section.proto} ${pts.join(' ')}`,
      `c=IN IP4 ${address}`,
      'a=rtcp:9 IN IP4 0.0.0.0',
    );
    lines.push(`a=ice-ufrag:${transport.ice.usernameFragment}`, `a=ice-pwd:${transport.ice.password}`);
    lines.push(`a=fingerprint:${sha256.algorithm} ${sha256.value}`, `a=setup:${transport.setup}`);
    if (section.mid !== undefined) lines.push(`a=mid:${section.mid}`);
    for (const e of p.headerExtensions ?? []) lines.push(`a=extmap:${e.id} ${e.uri}`);
    lines.push(`a=${a.direction}`);
    if (a.rids && a.rids.length > 0) {
      for (const rid of a.rids) lines.push(`a=rid:${rid} recv`);
      lines.push(`a=simulcast:recv ${a.rids.join(';')}`);
    }
    if (a.send) lines.push(`a=msid:${a.send.streamId} ${a.send.trackId}`);
    lines.push('a=rtcp-mux', 'a=rtcp-rsize');
    for (const c of p.codecs) {
      const name = c.mimeType.split('/')[1]!;
      lines.push(
        `a=rtpmap:${c.payloadType} ${name}/${c.clockRate}${c.channels && c.channels > 1 ? `/${c.channels}` : ''}`,
      );
      for (const fb of c.rtcpFeedback ?? [])
        lines.push(`a=rtcp-fb:${c.payloadType} ${fb.type}${fb.parameter ? ` ${fb.parameter}` : ''}`);
      // a viewer is answered with its own a=fmtp for the payload type it receives (see editionCodec)
      const offered =
        a.direction === 'sendonly' ? section.codecs.find((o) => o.payloadType === c.payloadType)?.fmtp : undefined;
      const fmtp = offered ?? formatParameters(c.parameters);
      if (fmtp) lines.push(`a=fmtp:${c.payloadType} ${fmtp}`);
    }
    if (a.send) {
      lines.push(
        `a=ssrc:${a.send.ssrc} cname:${a.send.cname}`,
        `a=ssrc:${a.send.ssrc} msid:${a.send.streamId} ${a.send.trackId}`,
      );
    }
    for (const c of transport.candidates) lines.push(candidateLine(c, 1));
    lines.push('a=end-of-candidates');
  }
  return lines.join('\r\n') + '\r\n';
}

/** Payload-type signature of what a viewer receives: viewers with equal signatures can share a router. */
export function codecSignature(codecs: readonly ChosenCodec[]): string {
  return codecs
    .map(
      (c) =>
        `${c.kind}:${c.name}/${c.clockRate}/${c.payloadType}/${[...fmtpParams(c.fmtp)]
          .filter(([k]) => k === 'packetization-mode' || k === 'profile-level-id')
          .map(([k, v]) => `${k}=${v}`)
          .sort()
          .join(',')}`,
    )
    .sort()
    .join('|');
}
