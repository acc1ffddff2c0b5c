export { Ocr, type OcrLine, type OcrOptions, type OcrResult } from './ocr.ts';
