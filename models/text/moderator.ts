// Text moderation for on-screen text (OCR) and live chat: English profanity from the `obscenity` package
// plus term lists per category (and per jurisdiction) passed in from policy data. Both run over folded
// text (see normalize.ts), so case, spacing, leetspeak and homoglyph tricks do not get through, and
// whole-word matching keeps words that merely contain a term ("Scunthorpe", "classic") clean.

import { RegExpMatcher, englishDataset, englishRecommendedTransformers } from 'obscenity';
import type { Category, TextHit } from '../types.ts';
import { collapseSpacing, fold, type FoldedText, termPattern } from './normalize.ts';

export interface TextLexicon {
  terms: string[];
  /** Jurisdictions (e.g. 'DE') where the category applies; absent = everywhere. */
  jurisdictions?: string[];
}

/** What a policy file supplies: `{ [category]: { terms, jurisdictions? } }`. */
export type TextLexicons = Record<Category, TextLexicon>;

export interface TextModeratorOptions {
  lexicons: TextLexicons;
  /** Category for English profanity (obscenity's dataset); null turns it off. Default 'profanity'. */
  profanityCategory: Category | null;
  /** Jurisdictions where profanity applies; absent = everywhere. */
  profanityJurisdictions?: string[];
}

export interface ModerateOptions {
  /** Where the text came from. Default 'chat'. */
  source: 'chat' | 'ocr';
  /** Only categories that apply in this jurisdiction; absent = all, each hit naming its jurisdictions. */
  jurisdiction?: string;
}

// obscenity matches inside longer words so that "fucking" or "bullshit" are caught; that also flags names
// like "Dickinson" or "Penistone". Accept an embedded match only when what surrounds it is an ordinary
// inflection or compound part.
const PREFIXES = new Set([
  '',
  'mother',
  'bull',
  'dumb',
  'jack',
  'horse',
  'dip',
  'smart',
  'arse',
  'ass',
  'dog',
  'chicken',
  'holy',
  'dick',
  'cock',
  'circle',
  'clusterfuck',
  'fuck',
]);
const SUFFIX =
  /^(?:s|es|ed|er|ers|ing|in|ings|y|ie|ies|ty|tier|head|heads|hole|holes|face|wad|wads|bag|bags|tard|tards|wit|wits|load|show|storm|stain|sucker|suckers|off|up|ass|fuck|fucker)?$/;
const PHRASE_WHITELIST = ['cum laude', 'magna cum', 'summa cum'];

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[\p{L}\p{N}]/u.test(c);
}

/** Whether an obscenity hit at [a, b) of the folded text stands as a word, an inflection or a compound. */
function plausibleProfanity(s: string, a: number, b: number): boolean {
  let x = a;
  while (isWordChar(s[x - 1])) x--;
  let y = b;
  while (isWordChar(s[y])) y++;
  return PREFIXES.has(s.slice(x, a)) && SUFFIX.test(s.slice(b, y));
}

const DEFAULTS: Readonly<TextModeratorOptions> = Object.freeze({ lexicons: {}, profanityCategory: 'profanity' });

interface CompiledTerm {
  category: Category;
  term: string;
  re: RegExp;
  /** For OCR text, where recognisers drop spaces between words. */
  reOcr: RegExp;
  jurisdictions?: string[];
}

export class TextModerator {
  #terms: CompiledTerm[] = [];
  readonly #profanity: RegExpMatcher | null;
  readonly #profanityCategory: Category | null;
  readonly #profanityJurisdictions: string[] | undefined;

  private constructor(opts: TextModeratorOptions) {
    this.#profanityCategory = opts.profanityCategory;
    this.#profanityJurisdictions = opts.profanityJurisdictions;
    this.#profanity =
      opts.profanityCategory === null
        ? null
        : (() => {
            const built = englishDataset.build();
            return new RegExpMatcher({
              ...built,
              whitelistedTerms: [...(built.whitelistedTerms ?? []), ...PHRASE_WHITELIST],
              ...englishRecommendedTransformers,
            });
          })();
    this.setLexicons(opts.lexicons);
  }

  static create(opts: Partial<TextModeratorOptions> = {}): TextModerator {
    return new TextModerator({ ...DEFAULTS, ...opts });
  }

  /** Replace the policy term lists (e.g. after a policy reload). */
  setLexicons(lexicons: TextLexicons): void {
    const compiled: CompiledTerm[] = [];
    for (const [category, lex] of Object.entries(lexicons)) {
      for (const term of lex.terms) {
        if (term.trim() === '') continue;
        const c: CompiledTerm = {
          category,
          term,
          re: new RegExp(termPattern(term), 'gu'),
          reOcr: new RegExp(termPattern(term, true), 'gu'),
        };
        if (lex.jurisdictions) c.jurisdictions = [...lex.jurisdictions];
        compiled.push(c);
      }
    }
    this.#terms = compiled;
  }

  /** Hits in one message or one OCR'd text, ordered by position. */
  moderate(text: string, opts: Partial<ModerateOptions> = {}): TextHit[] {
    const source = opts.source ?? 'chat';
    const applies = (j: string[] | undefined): boolean =>
      opts.jurisdiction === undefined || j === undefined || j.includes(opts.jurisdiction);
    const folded = fold(text);
    const views: FoldedText[] = [folded];
    const collapsed = collapseSpacing(folded);
    if (collapsed.text !== folded.text) views.push(collapsed);

    const hits = new Map<string, TextHit>();
    const add = (category: Category, term: string, v: FoldedText, a: number, b: number, j?: string[]): void => {
      const start = v.start[a];
      const end = v.end[b - 1];
      const key = `${category}\u0000${term}\u0000${start}\u0000${end}`;
      if (hits.has(key)) return;
      const hit: TextHit = { category, term, source, start, end, text: text.slice(start, end) };
      if (j) hit.jurisdictions = [...j];
      hits.set(key, hit);
    };

    for (const v of views) {
      for (const t of this.#terms) {
        if (!applies(t.jurisdictions)) continue;
        const re = source === 'ocr' ? t.reOcr : t.re;
        re.lastIndex = 0;
        for (const m of v.text.matchAll(re))
          add(t.category, t.term, v, m.index, m.index + m[0].length, t.jurisdictions);
      }
      if (this.#profanity && this.#profanityCategory !== null && applies(this.#profanityJurisdictions)) {
        for (const m of this.#profanity.getAllMatches(v.text, true)) {
          if (!plausibleProfanity(v.text, m.startIndex, m.endIndex + 1)) continue;
          const { phraseMetadata } = englishDataset.getPayloadWithPhraseMetadata(m);
          const word = phraseMetadata?.originalWord ?? v.text.slice(m.startIndex, m.endIndex + 1);
          add(this.#profanityCategory, word, v, m.startIndex, m.endIndex + 1, this.#profanityJurisdictions);
        }
      }
    }
    // A hit found in the collapsed view usually covers the same span as one in the plain view: keep one.
    return [...hits.values()].sort((a, b) => a.start - b.start || b.end - a.end);
  }
}
