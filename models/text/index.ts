export {
  TextModerator,
  type ModerateOptions,
  type TextLexicon,
  type TextLexicons,
  type TextModeratorOptions,
} from './moderator.ts';
export { collapseSpacing, fold, normalizeText, termPattern, type FoldedText } from './normalize.ts';
