export * from './pdq.ts';
export { resizeRgbBicubic, thumbnail, thumbnailSize } from './resample.ts';
