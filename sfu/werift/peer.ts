// werift plumbing shared by publishers and viewers: the peer connection configuration DESIGN.md
// measured (ICE-lite, no STUN, host candidates only, explicit codecs), answering an offer, and the
// few places where werift has to be corrected (sender report clock, REMB encoding).

import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  ReceiverEstimatedMaxBitrate,
  RtcpPayloadSpecificFeedback,
  useAbsSendTime,
  useFIR,
  useNACK,
  usePLI,
  useREMB,
  useSdesMid,
  useSdesRTPStreamId,
} from 'werift';
import type { RTCRtpReceiver, RTCRtpSender } from 'werift';
import { badSdp, negotiationFailed, noPorts } from '../errors.ts';
import { announceAddress, tidyAnswer } from '../sdp.ts';

export interface PeerNetworkOptions {
  /** Address written into ICE candidates. Default 127.0.0.1. */
  announcedAddress: string;
  /** Local address the media sockets bind to. Default: announcedAddress. */
  listenAddress: string;
  /** UDP port range for media sockets, inclusive. Default: ephemeral ports. */
  udpPortRange?: [number, number];
}

function videoFeedback() {
  return [useNACK(), usePLI(), useFIR(), useREMB()];
}

/** Explicit codec list: VP8 96 + RTX 97, H264 102 + RTX 103, Opus 111 (no transport-cc anywhere). */
export function sfuCodecs(): { audio: RTCRtpCodecParameters[]; video: RTCRtpCodecParameters[] } {
  return {
    video: [
      new RTCRtpCodecParameters({
        mimeType: 'video/VP8',
        clockRate: 90000,
        payloadType: 96,
        rtcpFeedback: videoFeedback(),
      }),
      new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000, payloadType: 97, parameters: 'apt=96' }),
      new RTCRtpCodecParameters({
        mimeType: 'video/H264',
        clockRate: 90000,
        payloadType: 102,
        parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
        rtcpFeedback: videoFeedback(),
      }),
      new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000, payloadType: 103, parameters: 'apt=102' }),
    ],
    audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })],
  };
}

/**
 * `simulcast`: also take the rid header extension (RFC 8852), only for a publisher whose offer has
 * simulcast layers: werift routes every packet that carries a rid by rid, so a single-layer client
 * that tags its packets with one would have them all dropped.
 */
export function createPeer(net: PeerNetworkOptions, simulcast = false): RTCPeerConnection {
  return new RTCPeerConnection({
    iceLite: true,
    iceServers: [],
    iceUseIpv6: false,
    iceUseTcp: false,
    iceInterfaceAddresses: { udp4: net.listenAddress },
    iceAdditionalHostAddresses: [net.listenAddress],
    icePortRange: net.udpPortRange,
    codecs: sfuCodecs(),
    headerExtensions: {
      video: [useSdesMid(), useAbsSendTime(), ...(simulcast ? [useSdesRTPStreamId()] : [])],
      audio: [useSdesMid()],
    },
  });
}

async function waitGathered(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const sub = pc.iceGatheringStateChange.subscribe((s) => {
      if (s === 'complete') done();
    });
    function done(): void {
      clearTimeout(timer);
      sub.unSubscribe();
      resolve();
    }
  });
}

/**
 * Applies a (narrowed) offer and returns the full answer with its host candidates (ICE-lite: there is
 * no trickle, every candidate is in the answer). `setup` is the answer's DTLS role (sfu/sdp.ts
 * offerSetup): werift leaves a transport's role 'auto' on a remote offer and then answers active
 * whatever was offered, so an offer of a=setup:active (FFmpeg's whip_flags=dtls_active) had both
 * sides wait as DTLS clients. `beforeAnswer` may adjust transceivers.
 */
export async function answerOffer(
  pc: RTCPeerConnection,
  offerSdp: string,
  net: PeerNetworkOptions,
  setup: 'active' | 'passive',
  beforeAnswer?: () => void,
): Promise<string> {
  // What werift cannot apply or answer is the offer's fault (fuzzed offers without a=ice-pwd or a=mid,
  // a junk ssrc-group made werift throw TypeErrors that were answered 500): 400. After that, ours.
  let answer: Awaited<ReturnType<RTCPeerConnection['createAnswer']>>;
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    for (const dtls of pc.dtlsTransports) dtls.role = setup === 'active' ? 'client' : 'server';
    beforeAnswer?.();
    answer = await pc.createAnswer();
  } catch (err) {
    throw badSdp(`the offer cannot be applied: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    await pc.setLocalDescription(answer);
    await waitGathered(pc, 3000);
  } catch (err) {
    throw negotiationFailed(err instanceof Error ? err.message : String(err));
  }
  const sdp = pc.localDescription?.sdp;
  if (!sdp) throw negotiationFailed('no local description');
  if (!/^a=candidate:/m.test(sdp)) {
    // no candidate: either nothing of the offer was taken (no transport to gather for) or every port
    // of the range is in use. Never a 201 that cannot connect.
    if (pc.dtlsTransports.length === 0 || !/^m=\S+ [1-9]/m.test(sdp))
      throw badSdp('nothing in the offer could be answered (every section rejected)');
    throw noPorts(
      net.udpPortRange ? `every port of ${net.udpPortRange.join('-')} is in use` : 'no socket could be bound',
    );
  }
  return tidyAnswer(announceAddress(sdp, net.listenAddress, net.announcedAddress));
}

/** REMB (draft-alvestrand-rmcat-remb): bitrate = mantissa(18 bits) * 2^exp. werift's serialize() ignores `bitrate`. */
export function rembFields(bitrateBps: number): { brExp: number; brMantissa: number } {
  let mantissa = Math.max(0, Math.floor(bitrateBps));
  let exp = 0;
  while (mantissa >= 1 << 18) {
    mantissa = Math.floor(mantissa / 2);
    exp++;
  }
  return { brExp: exp, brMantissa: mantissa };
}

export function sendRemb(receiver: RTCRtpReceiver, ssrcs: number[], bitrateBps: number): void {
  const { brExp, brMantissa } = rembFields(bitrateBps);
  const remb = new ReceiverEstimatedMaxBitrate({
    senderSsrc: receiver.rtcpSsrc,
    mediaSsrc: 0,
    brExp,
    brMantissa,
    bitrate: BigInt(bitrateBps),
    ssrcNum: ssrcs.length,
    ssrcFeedbacks: ssrcs,
  });
  const packet = new RtcpPayloadSpecificFeedback({ feedback: remb });
  receiver.dtlsTransport?.sendRtcp([packet]).catch((err: unknown) => {
    // a transport that is going away; the next REMB or the close will tell
    void err;
  });
}

/**
 * werift's sender reports pair the last forwarded RTP timestamp with the wall clock at forwarding time,
 * which bakes jitter and per-track forwarding delay into the viewer's RTP->NTP mapping (lip sync drifts).
 * After each forwarded packet the SFU overwrites that pair with the publisher's own mapping, so every
 * SR a viewer receives carries the publisher's RTP->NTP relation. The fields are private in werift's
 * typings, hence the reflective write.
 */
export function setSenderReportClock(sender: RTCRtpSender, ntpTimestamp: bigint): void {
  Reflect.set(sender, 'ntpTimestamp', ntpTimestamp);
}

export function senderOutputTimestamp(sender: RTCRtpSender): number | undefined {
  const ts: unknown = Reflect.get(sender, 'timestamp');
  return typeof ts === 'number' ? ts : undefined;
}
