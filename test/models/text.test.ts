import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TextModerator } from '../../models/text/moderator.ts';
import { collapseSpacing, fold } from '../../models/text/normalize.ts';

const lexicons = {
  banned_text: { terms: ['bad', 'kill yourself'] },
  extremism: { terms: ['heil'], jurisdictions: ['DE', 'AT'] },
};

test('normalisation defeats spacing, leetspeak, homoglyph, width and invisible-character evasions', () => {
  const m = TextModerator.create({ lexicons });
  const evasions: [string, string][] = [
    ['this is bad', 'bad'],
    ['this is BAD!', 'BAD'],
    ['this is b a d', 'b a d'],
    ['b.a.d', 'b.a.d'],
    ['b-a-d news', 'b-a-d'],
    ['so b4d', 'b4d'],
    ['so b@d', 'b@d'],
    ['so b\u0430d', 'b\u0430d'], // Cyrillic а
    ['so \u0432ad', '\u0432ad'], // Cyrillic в looks like b
    ['ＢＡＤ', 'ＢＡＤ'], // full width
    ['b\u200bad', 'b\u200bad'], // zero-width space
    ['bäd', 'bäd'],
    ['baaaad', 'baaaad'],
    ['just k1ll y0urself now', 'k1ll y0urself'],
    ['k i l l yourself', 'k i l l yourself'],
  ];
  for (const [text, span] of evasions) {
    const hits = m.moderate(text).filter((h) => h.category === 'banned_text');
    assert.equal(hits.length, 1, `${text}: ${JSON.stringify(hits)}`);
    assert.equal(hits[0].text, span, text);
    assert.equal(text.slice(hits[0].start, hits[0].end), span);
    assert.equal(hits[0].source, 'chat');
  }
  const profane = ['what the fuck', 'f u c k', 'sh1t happens', 'you motherfucker', 'ｆｕｃｋ'];
  for (const text of profane)
    assert.ok(
      m.moderate(text).some((h) => h.category === 'profanity'),
      text,
    );
});

test('clean sentences are not flagged (Scunthorpe and friends)', () => {
  const m = TextModerator.create({ lexicons });
  const clean = [
    'Scunthorpe United played a classic match',
    'I need to assess the assassin in Sussex and Essex',
    'The cocktail party at Dickinson was fun',
    'We drove through Penistone to Middlesex',
    'She graduated magna cum laude',
    'The therapist recommended shiitake mushrooms',
    'I passed the class with a badge',
    'The badminton game was scheduled badly',
    'Good morning, have a nice day!',
    "Hello from hell's kitchen",
    'Call me at 555 1234 or 4-8-15-16-23-42',
    'a b c d e f g',
    'The skills of our killer whale trainer',
    'Grape juice and a glass of water',
  ];
  for (const text of clean) assert.deepEqual(m.moderate(text), [], text);
});

test('per-jurisdiction lexicons and OCR source', () => {
  const m = TextModerator.create({ lexicons });
  assert.equal(m.moderate('HEIL', { jurisdiction: 'US' }).length, 0);
  const de = m.moderate('H3IL', { jurisdiction: 'DE', source: 'ocr' });
  assert.equal(de.length, 1);
  assert.deepEqual(de[0], {
    category: 'extremism',
    term: 'heil',
    source: 'ocr',
    start: 0,
    end: 4,
    text: 'H3IL',
    jurisdictions: ['DE', 'AT'],
  });
  // without a jurisdiction, the hit says where it applies
  assert.deepEqual(m.moderate('heil')[0].jurisdictions, ['DE', 'AT']);
  m.setLexicons({ spam: { terms: ['free crypto'] } });
  assert.equal(m.moderate('bad').filter((h) => h.category === 'banned_text').length, 0);
  assert.equal(m.moderate('FREE   CRYPT0 here')[0]?.category, 'spam');
  // OCR drops spaces between words; chat text does not get that leniency
  assert.equal(m.moderate('FREECRYPTO now', { source: 'ocr' })[0]?.category, 'spam');
  assert.deepEqual(
    m.moderate('freecrypto now', { source: 'chat' }).filter((h) => h.category === 'spam'),
    [],
  );
  const off = TextModerator.create({ lexicons: {}, profanityCategory: null });
  assert.deepEqual(off.moderate('fuck'), []);
});

test('fold keeps a position map back to the original text', () => {
  const f = collapseSpacing(fold('xy b a d ＹＯ'));
  assert.equal(f.text, 'xy bad yo');
  assert.equal(f.start[3], 3);
  assert.equal(f.end[5], 8);
  assert.equal(f.start[7], 9);
});
