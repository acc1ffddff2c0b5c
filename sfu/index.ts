// Public entry of the SFU: the engine-neutral contract, the error catalogue and the werift engine.
export type * from './types.ts';
export { SfuError, isSfuError } from './errors.ts';
export type { SfuErrorCode } from './errors.ts';
export { createWeriftSfu } from './werift/index.ts';
export type { WeriftSfu, WeriftSfuOptions, WeriftSfuCounters } from './werift/index.ts';
