export {
  AudioFingerprintBank,
  AUDIO_BANK_DEFAULTS,
  type AudioBankOptions,
  type AudioMatchDetail,
  type AudioRecording,
} from './bank.ts';
export { AudioStreamMatcher, type AudioStreamMatcherOptions } from './stream.ts';
export {
  FINGERPRINT_DEFAULTS,
  fingerprint,
  findPeaks,
  spectrogram,
  type Fingerprint,
  type FingerprintOptions,
  type Peak,
} from './fingerprint.ts';
export { decodeAudioFile } from './decode.ts';
