export { SamplerPool, DEFAULT_SAMPLER_POOL_OPTIONS } from './sampler-pool.ts';
export type { SamplerPoolOptions, SamplerPoolEvents, SamplerStreamStats } from './sampler-pool.ts';
export { FrameAssembler, vp8Format, h264Format } from './frame-assembler.ts';
export type { AssembledFrame, AssemblerPacket, FramePayloadFormat } from './frame-assembler.ts';
export { Vp8PayloadDescriptor, depacketizeVp8, vp8PacketIsKeyframe } from './rtp/vp8.ts';
export { H264ParameterSets, h264PayloadNals, toAnnexB } from './rtp/h264.ts';
export { VideoSamplingRule, lumaThumbnail } from './video-sampling.ts';
export * from './errors.ts';
export type * from './types.ts';
