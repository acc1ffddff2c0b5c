// Engine-neutral SDP offer handling: validate, pick codecs, and narrow an offer to the codecs the SFU
// will use before an engine answers it. Narrowing the offer (dropping payload types from m-lines) is
// what makes the answer carry exactly one primary codec per m-line: the publisher's choice for
// publishers, the publisher's codec for viewers (a viewer with another codec would decode nothing).

import { badSdp, noCommonCodec, noMedia } from './errors.ts';
import type { CodecName, MediaKind } from './types.ts';

export interface OfferedCodec {
  payloadType: number;
  /** Encoding name as written (e.g. VP8, H264, opus, rtx). */
  name: string;
  clockRate: number;
  channels?: number;
  /** a=fmtp parameters as one string, '' when none. */
  fmtp: string;
}

export interface MediaSection {
  kind: string;
  port: number;
  proto: string;
  formats: number[];
  mid?: string;
  direction?: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  codecs: OfferedCodec[];
  /** Raw lines of the section, the m= line first. */
  lines: string[];
}

export interface ParsedOffer {
  sessionLines: string[];
  media: MediaSection[];
}

/** The codec the SFU picked for one kind. */
export interface ChosenCodec {
  kind: MediaKind;
  name: CodecName;
  payloadType: number;
  clockRate: number;
  channels?: number;
  fmtp: string;
  rtxPayloadType?: number;
}

const MAX_LINE = 8192;

export function parseOffer(sdp: string): ParsedOffer {
  if (typeof sdp !== 'string' || sdp.length === 0) throw badSdp('empty body');
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines[0] !== 'v=0') throw badSdp('must start with v=0');
  const session: string[] = [];
  const media: MediaSection[] = [];
  let current: MediaSection | undefined;
  for (const line of lines) {
    if (line.length > MAX_LINE) throw badSdp('line too long');
    if (!/^[a-z]=/.test(line)) throw badSdp(`not an SDP line: ${JSON.stringify(line.slice(0, 40))}`);
    if (line.startsWith('m=')) {
      const m = /^m=(\S+) (\d+)(?:\/\d+)? (\S+)(?: (.*))?$/.exec(line);
      if (!m) throw badSdp(`bad m= line: ${line.slice(0, 80)}`);
      const formats = (m[4] ?? '').split(' ').filter(Boolean).map(Number);
      current = { kind: m[1]!, port: Number(m[2]), proto: m[3]!, formats: formats.filter((f) => Number.isInteger(f)), codecs: [], lines: [line] };
      media.push(current);
      continue;
    }
    if (!current) {
      session.push(line);
      continue;
    }
    current.lines.push(line);
    let m: RegExpExecArray | null;
    if ((m = /^a=rtpmap:(\d+) ([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(line))) {
      current.codecs.push({ payloadType: Number(m[1]), name: m[2]!, clockRate: Number(m[3]), channels: m[4] ? Number(m[4]) : undefined, fmtp: '' });
    } else if ((m = /^a=mid:(\S+)/.exec(line))) {
      current.mid = m[1];
    } else if ((m = /^a=(sendrecv|sendonly|recvonly|inactive)$/.exec(line))) {
      current.direction = m[1] as MediaSection['direction'];
    }
  }
  for (const section of media) {
    for (const line of section.lines) {
      const m = /^a=fmtp:(\d+) (.*)$/.exec(line);
      if (!m) continue;
      const codec = section.codecs.find((c) => c.payloadType === Number(m[1]));
      if (codec) codec.fmtp = m[2]!.trim();
    }
  }
  if (!session.some((l) => l.startsWith('o='))) throw badSdp('missing o= line');
  if (media.length === 0) throw noMedia('the offer has no m= sections');
  return { sessionLines: session, media };
}

export function fmtpParams(fmtp: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of fmtp.split(';')) {
    const [k, v] = part.split('=');
    if (k && k.trim()) out.set(k.trim().toLowerCase(), (v ?? '').trim());
  }
  return out;
}

function rtxFor(section: MediaSection, apt: number): number | undefined {
  return section.codecs.find((c) => c.name.toLowerCase() === 'rtx' && fmtpParams(c.fmtp).get('apt') === String(apt))?.payloadType;
}

function toChosen(section: MediaSection, kind: MediaKind, name: CodecName, c: OfferedCodec): ChosenCodec {
  return { kind, name, payloadType: c.payloadType, clockRate: c.clockRate, channels: c.channels, fmtp: c.fmtp, rtxPayloadType: kind === 'video' ? rtxFor(section, c.payloadType) : undefined };
}

/** The media sections the SFU handles (audio/video with a non-zero port). */
export function activeSections(offer: ParsedOffer): MediaSection[] {
  return offer.media.filter((m) => (m.kind === 'audio' || m.kind === 'video') && m.port !== 0);
}

/**
 * WHIP: the sections the publisher sends and the codec the SFU takes from each, one per kind.
 * Throws SFU_ERR_NO_MEDIA (no usable section) or SFU_ERR_NO_COMMON_CODEC (nothing the SFU takes).
 */
export function publisherCodecs(offer: ParsedOffer): Map<MediaSection, ChosenCodec> {
  const sections = activeSections(offer);
  if (sections.length === 0) throw noMedia('no audio or video m= section with a port');
  const chosen = new Map<MediaSection, ChosenCodec>();
  for (const s of sections) {
    if (s.direction === 'recvonly' || s.direction === 'inactive') continue;
    if ([...chosen.values()].some((c) => c.kind === s.kind)) continue;
    const c = choosePublisherCodec(s);
    if (c) chosen.set(s, c);
  }
  if (chosen.size === 0) {
    const offered = sections.flatMap((s) => s.codecs.map((c) => c.name)).filter((n) => n.toLowerCase() !== 'rtx');
    throw noCommonCodec(`the server takes VP8 or H264 video and Opus audio; the offer has ${[...new Set(offered)].join(', ') || 'nothing it can send'}`);
  }
  return chosen;
}

/**
 * WHEP: the sections the viewer receives and, for each, its own payload type for the stream's codec
 * of that kind (one per kind). Throws SFU_ERR_NO_MEDIA, or SFU_ERR_NO_COMMON_CODEC when the viewer
 * cannot decode what the stream sends or asks for nothing it sends.
 */
export function viewerCodecs(offer: ParsedOffer, sourceOf: (kind: MediaKind) => ChosenCodec | undefined, streamSends: string): Map<MediaSection, ChosenCodec> {
  const sections = activeSections(offer);
  if (sections.length === 0) throw noMedia('no audio or video m= section with a port');
  const chosen = new Map<MediaSection, ChosenCodec>();
  for (const s of sections) {
    if (s.direction === 'sendonly' || s.direction === 'inactive') continue;
    if (s.kind !== 'audio' && s.kind !== 'video') continue;
    const source = sourceOf(s.kind);
    if (!source || [...chosen.values()].some((c) => c.kind === s.kind)) continue;
    const match = matchViewerCodec(s, source);
    if (!match) {
      throw noCommonCodec(`the stream sends ${source.name} ${s.kind}; the viewer's offer has ${s.codecs.map((c) => c.name).filter((n) => n.toLowerCase() !== 'rtx').join(', ') || 'no codecs'}`);
    }
    chosen.set(s, match);
  }
  if (chosen.size === 0) throw noCommonCodec(`the viewer's offer asks for nothing the stream sends (${streamSends})`);
  return chosen;
}

/** Publisher side: VP8 first, else H264 (packetization-mode 1 first, constrained baseline first); Opus for audio. */
export function choosePublisherCodec(section: MediaSection): ChosenCodec | undefined {
  if (section.kind === 'audio') {
    const opus = section.codecs.find((c) => c.name.toLowerCase() === 'opus' && c.clockRate === 48000);
    return opus ? toChosen(section, 'audio', 'opus', opus) : undefined;
  }
  if (section.kind !== 'video') return undefined;
  const vp8 = section.codecs.find((c) => c.name.toUpperCase() === 'VP8' && c.clockRate === 90000);
  if (vp8) return toChosen(section, 'video', 'VP8', vp8);
  const h264 = section.codecs.filter((c) => c.name.toUpperCase() === 'H264' && c.clockRate === 90000);
  const score = (c: OfferedCodec): number => {
    const p = fmtpParams(c.fmtp);
    const pm = p.get('packetization-mode') === '1' ? 2 : 0;
    const plid = (p.get('profile-level-id') ?? '').toLowerCase();
    const cb = plid.startsWith('42e0') || plid.startsWith('42c0') ? 1 : 0;
    return pm + cb;
  };
  const best = [...h264].sort((a, b) => score(b) - score(a))[0];
  return best ? toChosen(section, 'video', 'H264', best) : undefined;
}

/** Viewer side: the viewer's own payload type for the publisher's codec, or undefined when it lacks it. */
export function matchViewerCodec(section: MediaSection, publisher: ChosenCodec): ChosenCodec | undefined {
  const candidates = section.codecs.filter((c) => c.name.toLowerCase() === publisher.name.toLowerCase() && c.clockRate === publisher.clockRate);
  if (publisher.name !== 'H264') return candidates[0] ? toChosen(section, publisher.kind, publisher.name, candidates[0]) : undefined;
  const pub = fmtpParams(publisher.fmtp);
  const pubPm = pub.get('packetization-mode') ?? '0';
  const pubPlid = (pub.get('profile-level-id') ?? '42e01f').toLowerCase();
  const samePm = candidates.filter((c) => (fmtpParams(c.fmtp).get('packetization-mode') ?? '0') === pubPm);
  const exact = samePm.find((c) => (fmtpParams(c.fmtp).get('profile-level-id') ?? '').toLowerCase() === pubPlid);
  const sameProfile = samePm.find((c) => (fmtpParams(c.fmtp).get('profile-level-id') ?? '').toLowerCase().slice(0, 2) === pubPlid.slice(0, 2));
  const pick = exact ?? sameProfile ?? samePm[0];
  return pick ? toChosen(section, publisher.kind, 'H264', pick) : undefined;
}

const TRANSPORT_CC_EXT = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';

/**
 * Narrows one m-section to the given payload types and drops transport-cc (feedback and header
 * extension): werift's transport-cc feedback makes Chromium's estimate collapse, so REMB is used instead.
 */
export function narrowSection(section: MediaSection, keep: number[]): string[] {
  const keepSet = new Set(keep);
  const [mline, ...rest] = section.lines;
  const parts = mline!.split(' ');
  const head = parts.slice(0, 3).join(' ');
  const out = [`${head} ${keep.join(' ')}`];
  for (const line of rest) {
    const m = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+|\*)[ ]/.exec(line);
    if (m && m[1] !== '*' && !keepSet.has(Number(m[1]))) continue;
    if (/^a=rtcp-fb:\S+ transport-cc/.test(line)) continue;
    if (line.startsWith('a=extmap:') && line.includes(TRANSPORT_CC_EXT)) continue;
    out.push(line);
  }
  return out;
}

/** Rebuilds an offer: sections in `keep` narrowed to their payload types, the others rejected (port 0). */
export function rebuildOffer(offer: ParsedOffer, keep: Map<MediaSection, number[]>): string {
  const lines = [...offer.sessionLines];
  for (const section of offer.media) {
    const pts = keep.get(section);
    if (pts && pts.length > 0) {
      lines.push(...narrowSection(section, pts));
    } else {
      const parts = section.lines[0]!.split(' ');
      parts[1] = '0';
      lines.push(parts.join(' '), ...section.lines.slice(1).filter((l) => l.startsWith('a=mid:')), 'a=inactive');
    }
  }
  return lines.join('\r\n') + '\r\n';
}

export function requireCodec<T>(value: T | undefined, detail: string): T {
  if (value === undefined) throw noCommonCodec(detail);
  return value;
}

/**
 * Keeps only the host candidates on the listen address and writes the announced address into them
 * (bind on one address, announce another). werift also gathers the machine's other interfaces.
 */
export function announceAddress(sdp: string, listen: string, announced: string): string {
  return sdp
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') || l.split(' ')[4] === listen)
    .map((l) => (l.startsWith('a=candidate:') && listen !== announced ? l.replace(` ${listen} `, ` ${announced} `) : l))
    .join('\r\n');
}
