// Engine-neutral SDP offer handling: validate, pick codecs, and narrow an offer to the codecs the SFU
// will use before an engine answers it. Narrowing the offer (dropping payload types from m-lines) is
// what makes the answer carry exactly one primary codec per m-line: the publisher's choice for
// publishers, the publisher's codec for viewers (a viewer with another codec would decode nothing).
//
// Third-party clients (issue 15) shaped three rules here, one owner for both engines:
// - bundle-only (RFC 8843 7.2): clients with bundlePolicy max-bundle (Firefox, libdatachannel) write
//   every m-line after the first as port 0 + a=bundle-only. Such a section is live when its mid is in a
//   BUNDLE group; a port-0 section without bundle-only, or outside every group, stays rejected. Before
//   this, a max-bundle publisher's audio was never ingested and such a viewer never got audio.
// - DTLS role (RFC 8842 5.3): the answer takes passive to an active offer, active to passive and to
//   actpass (offerSetup). FFmpeg's whip muxer with whip_flags=dtls_active offers active; werift answered
//   active too and both sides waited as DTLS clients, with nothing logged.
// - The server is ICE-lite and answers with every candidate: answers carry no a=ice-options:trickle
//   (PATCH answers 405), and recvonly sections announce no a=ssrc (tidyAnswer, for werift's answers).

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
  /** a=bundle-only (RFC 8843): port 0 that means "only inside the BUNDLE group", not "rejected". */
  bundleOnly: boolean;
  codecs: OfferedCodec[];
  /** Raw lines of the section, the m= line first. */
  lines: string[];
}

export interface ParsedOffer {
  sessionLines: string[];
  media: MediaSection[];
  /** The mids of each a=group:BUNDLE, in order (the first of a group is its offerer-tagged section). */
  bundleGroups: string[][];
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
      current = {
        kind: m[1]!,
        port: Number(m[2]),
        proto: m[3]!,
        formats: formats.filter((f) => Number.isInteger(f)),
        bundleOnly: false,
        codecs: [],
        lines: [line],
      };
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
      current.codecs.push({
        payloadType: Number(m[1]),
        name: m[2]!,
        clockRate: Number(m[3]),
        channels: m[4] ? Number(m[4]) : undefined,
        fmtp: '',
      });
    } else if ((m = /^a=mid:(\S+)/.exec(line))) {
      current.mid = m[1];
    } else if ((m = /^a=(sendrecv|sendonly|recvonly|inactive)$/.exec(line))) {
      current.direction = m[1] as MediaSection['direction'];
    } else if (line === 'a=bundle-only') {
      current.bundleOnly = true;
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
  const bundleGroups = session
    .map((l) => /^a=group:BUNDLE(?: (.*))?$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => (m[1] ?? '').split(' ').filter(Boolean));
  return { sessionLines: session, media, bundleGroups };
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
  return section.codecs.find((c) => c.name.toLowerCase() === 'rtx' && fmtpParams(c.fmtp).get('apt') === String(apt))
    ?.payloadType;
}

function toChosen(section: MediaSection, kind: MediaKind, name: CodecName, c: OfferedCodec): ChosenCodec {
  return {
    kind,
    name,
    payloadType: c.payloadType,
    clockRate: c.clockRate,
    channels: c.channels,
    fmtp: c.fmtp,
    rtxPayloadType: kind === 'video' ? rtxFor(section, c.payloadType) : undefined,
  };
}

/** Whether a section's mid is in one of the offer's BUNDLE groups. */
export function inBundle(offer: ParsedOffer, section: MediaSection): boolean {
  return section.mid !== undefined && offer.bundleGroups.some((g) => g.includes(section.mid!));
}

/**
 * The media sections the SFU handles: audio/video with a non-zero port, or port 0 with a=bundle-only
 * and a mid in a BUNDLE group (RFC 8843 7.2).
 */
export function activeSections(offer: ParsedOffer): MediaSection[] {
  return offer.media.filter(
    (m) => (m.kind === 'audio' || m.kind === 'video') && (m.port !== 0 || (m.bundleOnly && inBundle(offer, m))),
  );
}

/**
 * The rids a publisher sends in one m-section (RFC 8853 simulcast, RFC 8851 rid), in the order of its
 * a=simulcast:send line: the first of each alternative list, paused (~) layers included, only rids that
 * an a=rid:<id> send line declares. Empty for a section without simulcast. OBS's WHIP output with
 * simulcast on offers a=rid:0/1/2 send and a=simulcast:send 0;1;2 (rid 0 its full output resolution)
 * and errors unless the answer takes every layer.
 */
export function simulcastRids(section: MediaSection): string[] {
  const declared = new Set(
    section.lines.map((l) => /^a=rid:(\S+) send(?: |$)/.exec(l)?.[1]).filter((r): r is string => r !== undefined),
  );
  const line = section.lines.find((l) => l.startsWith('a=simulcast:'));
  if (!line || declared.size === 0) return [];
  const m = /(?:^a=simulcast:|\s)send\s+(\S+)/.exec(line);
  if (!m) return [];
  const rids = m[1]!.split(';').map((alternatives) => alternatives.split(',')[0]!.replace(/^~/, ''));
  return [...new Set(rids.filter((r) => declared.has(r)))];
}

/** The offerer's DTLS setup and the one the answer takes (RFC 8842 5.3: actpass -> active, so DTLS starts with the answer). */
export interface OfferSetup {
  offered: 'active' | 'passive' | 'actpass';
  answer: 'active' | 'passive';
}

/**
 * Transport attribute values, media level over session level (RFC 8866): from the first of `sections`
 * that has it, else from the first bundled section that has it (a bundle-only section may carry none:
 * its group's tagged section does, even one the SFU rejects), else the session.
 */
export function transportAttribute(offer: ParsedOffer, sections: readonly MediaSection[], name: string): string[] {
  const prefix = `a=${name}:`;
  const values = (lines: readonly string[]): string[] =>
    lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length).trim());
  for (const s of [...sections, ...offer.media.filter((m) => inBundle(offer, m))]) {
    const v = values(s.lines);
    if (v.length > 0) return v;
  }
  return values(offer.sessionLines);
}

/** DTLS roles per RFC 8842: the answer is passive to active, active to passive and to actpass (or no a=setup). */
export function offerSetup(offer: ParsedOffer, sections: readonly MediaSection[]): OfferSetup {
  const setup = (transportAttribute(offer, sections, 'setup')[0] ?? 'actpass').toLowerCase();
  if (setup === 'active') return { offered: 'active', answer: 'passive' };
  if (setup === 'passive') return { offered: 'passive', answer: 'active' };
  if (setup === 'actpass') return { offered: 'actpass', answer: 'active' };
  throw badSdp(`a=setup:${setup} is not active, passive or actpass`);
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
    throw noCommonCodec(
      `the server takes VP8 or H264 video and Opus audio; the offer has ${[...new Set(offered)].join(', ') || 'nothing it can send'}`,
    );
  }
  return chosen;
}

/**
 * WHEP: the sections the viewer receives and, for each, its own payload type for the stream's codec
 * of that kind (one per kind). Throws SFU_ERR_NO_MEDIA, or SFU_ERR_NO_COMMON_CODEC when the viewer
 * cannot decode what the stream sends or asks for nothing it sends.
 */
export function viewerCodecs(
  offer: ParsedOffer,
  sourceOf: (kind: MediaKind) => ChosenCodec | undefined,
  streamSends: string,
): Map<MediaSection, ChosenCodec> {
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
      throw noCommonCodec(
        `the stream sends ${source.name} ${s.kind}; the viewer's offer has ${
          s.codecs
            .map((c) => c.name)
            .filter((n) => n.toLowerCase() !== 'rtx')
            .join(', ') || 'no codecs'
        }`,
      );
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
  const candidates = section.codecs.filter(
    (c) => c.name.toLowerCase() === publisher.name.toLowerCase() && c.clockRate === publisher.clockRate,
  );
  if (publisher.name !== 'H264')
    return candidates[0] ? toChosen(section, publisher.kind, publisher.name, candidates[0]) : undefined;
  const pub = fmtpParams(publisher.fmtp);
  const pubPm = pub.get('packetization-mode') ?? '0';
  const pubPlid = (pub.get('profile-level-id') ?? '42e01f').toLowerCase();
  const samePm = candidates.filter((c) => (fmtpParams(c.fmtp).get('packetization-mode') ?? '0') === pubPm);
  const plidOf = (c: OfferedCodec): string => (fmtpParams(c.fmtp).get('profile-level-id') ?? '42e01f').toLowerCase();
  const exact = samePm.find((c) => plidOf(c) === pubPlid);
  const sameProfile = samePm.find((c) => h264Profile(plidOf(c)) === h264Profile(pubPlid));
  // decoders go by the bitstream, not by the SDP (OBS announces 42e01f for High): another profile still plays
  const pick = exact ?? sameProfile ?? samePm[0];
  return pick ? toChosen(section, publisher.kind, 'H264', pick) : undefined;
}

/**
 * The H.264 profile a profile-level-id names (RFC 6184 8.1, as libwebrtc reads it): constraint_set1
 * makes Baseline, Main or Extended Constrained Baseline; the level (last byte) is left out.
 */
export function h264Profile(profileLevelId: string): string {
  const v = /^[0-9a-f]{6}$/i.test(profileLevelId) ? parseInt(profileLevelId, 16) : 0x42e01f;
  const idc = v >> 16;
  const iop = (v >> 8) & 0xff;
  if ((idc === 0x42 || idc === 0x4d || idc === 0x58) && iop & 0x40) return 'constrained-baseline';
  if (idc === 0x42) return 'baseline';
  if (idc === 0x4d) return 'main';
  if (idc === 0x58) return 'extended';
  if (idc === 0x64) return (iop & 0x0c) === 0x0c ? 'constrained-high' : 'high';
  return `idc-${idc}`;
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

const TRANSPORT_ATTRIBUTES = ['ice-ufrag', 'ice-pwd', 'fingerprint', 'setup'];

/**
 * A kept bundle-only section as an ordinary bundled one (port 9, no a=bundle-only, the group's transport
 * attributes where it has none): werift reads port 0 as rejected whatever the attributes say.
 */
function unbundleOnly(offer: ParsedOffer, section: MediaSection, lines: string[]): string[] {
  if (section.port !== 0) return lines;
  const parts = lines[0]!.split(' ');
  parts[1] = '9';
  const out = [parts.join(' '), ...lines.slice(1).filter((l) => l !== 'a=bundle-only')];
  for (const name of TRANSPORT_ATTRIBUTES) {
    const prefix = `a=${name}:`;
    if (out.some((l) => l.startsWith(prefix)) || offer.sessionLines.some((l) => l.startsWith(prefix))) continue;
    out.push(...transportAttribute(offer, [], name).map((v) => `${prefix}${v}`));
  }
  return out;
}

/**
 * Rebuilds an offer: sections in `keep` narrowed to their payload types (bundle-only ones made ordinary
 * bundled sections), the others rejected (port 0).
 */
export function rebuildOffer(offer: ParsedOffer, keep: Map<MediaSection, number[]>): string {
  const lines = [...offer.sessionLines];
  for (const section of offer.media) {
    const pts = keep.get(section);
    if (pts && pts.length > 0) {
      lines.push(...unbundleOnly(offer, section, narrowSection(section, pts)));
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

/**
 * werift's answers, made to say what this server does: it is ICE-lite with every candidate in the
 * answer and no trickle (PATCH answers 405), so no a=ice-options:trickle; a=ice-lite at session level
 * (RFC 8839 5.3; werift writes it per m-line, where parsers that follow the RFC do not look); no
 * a=ssrc or a=ssrc-group in recvonly sections (werift announces the SSRCs of senders it never uses).
 */
export function tidyAnswer(sdp: string): string {
  const session: string[] = [];
  const sections: string[][] = [];
  // werift ends some lines with a space (a=simulcast:recv 0;1;2 ), which strict parsers refuse
  for (const line of sdp.split('\r\n').map((l) => l.trimEnd())) {
    if (line.startsWith('m=')) sections.push([line]);
    else (sections.at(-1) ?? session).push(line);
  }
  const iceLite = [session, ...sections].some((lines) => lines.includes('a=ice-lite'));
  const out = session.filter((l) => l !== 'a=ice-lite' && !l.startsWith('a=ice-options:'));
  if (iceLite) out.splice(out.findIndex((l) => l.startsWith('t=')) + 1 || out.length, 0, 'a=ice-lite');
  for (const lines of sections) {
    const receiveOnly = lines.includes('a=recvonly') || lines.includes('a=inactive');
    out.push(
      ...lines.filter(
        (l) => l !== 'a=ice-lite' && !l.startsWith('a=ice-options:') && !(receiveOnly && /^a=ssrc(-group)?:/.test(l)),
      ),
    );
  }
  return out.join('\r\n');
}
