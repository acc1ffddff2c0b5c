export { SileroVad, VadStream, type VadOptions, type VadResult, type VadState } from './vad.ts';
