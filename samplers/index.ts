// samplers/: fork live RTP into decoded, timed samples off the forwarding thread.
//
//   const pool = await SamplerPool.create({ videoFps: 2 });
//   pool.on('sample', (s) => ...);                          // VideoSample (RGB24) | AudioSample (16 kHz mono)
//   pool.on('keyframeNeeded', (streamId, trackId) => ...);  // ask the publisher for a key frame (throttled here)
//   pool.on('warning', (message) => ...);
//   tap.on('packet', (p) => pool.push(p));                  // never blocks; drops (counted) when behind
//   pool.releaseStream(streamId); pool.stats(); await pool.close();
export { SamplerPool, DEFAULT_SAMPLER_POOL_OPTIONS } from './sampler-pool.ts';
export type { SamplerPoolOptions, SamplerPoolEvents, SamplerStreamStats } from './sampler-pool.ts';
export { FrameAssembler, vp8Format, h264Format } from './frame-assembler.ts';
export type { AssembledFrame, AssemblerPacket, FramePayloadFormat } from './frame-assembler.ts';
export { Vp8PayloadDescriptor, depacketizeVp8, vp8PacketIsKeyframe } from '../media/vp8.ts';
export { H264ParameterSets, h264PayloadNals, toAnnexB } from '../media/h264.ts';
export { VideoSamplingRule, lumaThumbnail } from './video-sampling.ts';
export * from './errors.ts';
export type * from './types.ts';
export { jpegThumbnail } from './thumbnail.ts';
export type { JpegThumbnailOptions } from './thumbnail.ts';
