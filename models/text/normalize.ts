// Text folding against common evasions, keeping a map back to the original characters so that hits can
// report where in the message they are.
//
//   fold:     NFKC (full-width, mathematical alphanumerics, ligatures), lower case, diacritics removed,
//             homoglyphs (Cyrillic/Greek look-alikes) to Latin, invisible characters dropped.
//   collapse: runs of three or more single characters separated by spaces/punctuation ("b a d",
//             "b.a.d", "k-i-l-l") are joined, so spaced-out words become words again.
// Leetspeak ("b4d", "$h1t") is left in place here and handled by the matcher's per-letter classes, since
// digits are ambiguous ("1" is i or l) and folding them would damage numbers in clean text.

/** A folded string and, per folded UTF-16 unit, the original [start, end) it came from. */
export interface FoldedText {
  text: string;
  start: Int32Array;
  end: Int32Array;
}

// Look-alikes NFKC leaves alone. Kept small and to the letters abusers actually substitute.
const HOMOGLYPHS: Record<string, string> = {
  а: 'a',
  в: 'b',
  с: 'c',
  ԁ: 'd',
  е: 'e',
  ё: 'e',
  һ: 'h',
  і: 'i',
  ї: 'i',
  ј: 'j',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  ԛ: 'q',
  г: 'r',
  ѕ: 's',
  т: 't',
  у: 'y',
  х: 'x',
  ү: 'y',
  ԝ: 'w',
  з: '3',
  ь: 'b',
  α: 'a',
  β: 'b',
  ε: 'e',
  η: 'n',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  ω: 'w',
  ɑ: 'a',
  ɡ: 'g',
  ɩ: 'i',
  ʏ: 'y',
  ᴀ: 'a',
  ʙ: 'b',
  ᴄ: 'c',
  ᴅ: 'd',
  ᴇ: 'e',
  ɢ: 'g',
  ʜ: 'h',
  ɪ: 'i',
  ᴊ: 'j',
  ᴋ: 'k',
  ʟ: 'l',
  ᴍ: 'm',
  ɴ: 'n',
  ᴏ: 'o',
  ᴘ: 'p',
  ʀ: 'r',
  ꜱ: 's',
  ᴛ: 't',
  ᴜ: 'u',
  ᴠ: 'v',
  ᴡ: 'w',
  ᴢ: 'z',
  ı: 'i',
  ł: 'l',
  ø: 'o',
  đ: 'd',
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
};

const INVISIBLE =
  /[\u034f\u17b4\u17b5\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u206a-\u206f\ufeff]/u;
const COMBINING = /\p{M}/gu;

function foldChar(ch: string): string {
  if (INVISIBLE.test(ch)) return '';
  let s = ch.normalize('NFKC').toLowerCase();
  s = s.normalize('NFD').replace(COMBINING, '');
  let out = '';
  for (const c of s) out += HOMOGLYPHS[c] ?? c;
  return out;
}

/** Fold every character; positions map back to the original string. */
export function fold(original: string): FoldedText {
  let text = '';
  const start: number[] = [];
  const end: number[] = [];
  let i = 0;
  for (const ch of original) {
    const f = foldChar(ch);
    for (let k = 0; k < f.length; k++) {
      start.push(i);
      end.push(i + ch.length);
    }
    text += f;
    i += ch.length;
  }
  return { text, start: Int32Array.from(start), end: Int32Array.from(end) };
}

const WORDISH = /[\p{L}\p{N}@$!|+]/u;
const SEPARATOR = /[\s._\-*~,:;/\\'"`^=#]/u;

/**
 * Join spaced-out words: a run of >= 3 one-character tokens separated by 1-3 separators becomes one
 * token. Two-letter runs ("a b") are left alone: too many clean sentences contain them.
 */
export function collapseSpacing(f: FoldedText): FoldedText {
  const s = f.text;
  const keep = new Uint8Array(s.length).fill(1);
  const isChar = (k: number): boolean => k >= 0 && k < s.length && WORDISH.test(s[k]);
  const isSep = (k: number): boolean => k >= 0 && k < s.length && SEPARATOR.test(s[k]);
  let k = 0;
  while (k < s.length) {
    // a single character token: word-ish, not preceded or followed by another word-ish character
    if (isChar(k) && !isChar(k - 1) && !isChar(k + 1)) {
      const letters = [k];
      const gaps: [number, number][] = [];
      let p = k + 1;
      for (;;) {
        let q = p;
        while (q - p < 3 && isSep(q)) q++;
        if (q === p || !isChar(q) || isChar(q + 1)) break;
        gaps.push([p, q]);
        letters.push(q);
        p = q + 1;
      }
      if (letters.length >= 3) {
        for (const [a, b] of gaps) for (let x = a; x < b; x++) keep[x] = 0;
        k = letters[letters.length - 1] + 1;
        continue;
      }
    }
    k++;
  }
  let text = '';
  const start: number[] = [];
  const end: number[] = [];
  for (let x = 0; x < s.length; x++) {
    if (!keep[x]) continue;
    text += s[x];
    start.push(f.start[x]);
    end.push(f.end[x]);
  }
  return { text, start: Int32Array.from(start), end: Int32Array.from(end) };
}

/** fold + collapseSpacing. */
export function normalizeText(original: string): FoldedText {
  return collapseSpacing(fold(original));
}

// Per-letter classes for matching terms against folded text with leetspeak left in.
const LEET: Record<string, string> = {
  a: 'a4@',
  b: 'b8',
  c: 'c(',
  e: 'e3',
  g: 'g96',
  h: 'h#',
  i: 'i1!|',
  l: 'l1|',
  o: 'o0',
  s: 's5$z',
  t: 't7+',
  z: 'z2',
};

function escapeClass(chars: string): string {
  return chars.replace(/[\\\][^-]/g, (c) => `\\${c}`);
}

/**
 * A regular expression source that finds the term as a whole word in folded text: each letter may be a
 * leet substitute and may be stretched ("baaad"), words of a multi-word term may be separated by any
 * non-letters (or by nothing when wordsMayTouch: OCR often loses the space between words). Whole-word matching is what keeps "Scunthorpe" and "classic" clean.
 */
export function termPattern(term: string, wordsMayTouch = false): string {
  const words = fold(term)
    .text.split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
  if (words.length === 0) return '(?!)';
  // A letter once, or stretched to three or more ("baaad"): allowing doubles would turn "good" into "god".
  const word = (w: string): string =>
    [...w]
      .map((c) => {
        const cls = `[${escapeClass(LEET[c] ?? c)}]`;
        return `${cls}(?:${cls}{2,})?`;
      })
      .join('');
  const between = wordsMayTouch ? '[^\\p{L}\\p{N}]*' : '[^\\p{L}\\p{N}]+';
  return `(?<![\\p{L}\\p{N}])${words.map(word).join(between)}(?![\\p{L}\\p{N}])`;
}
