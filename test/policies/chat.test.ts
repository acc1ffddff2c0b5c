import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chatVisibility, type ChatHit } from '../../policies/chat.ts';
import { loadPolicyBundle } from '../../policies/loader.ts';
import { shippedPolicy, shippedPolicyFiles } from './helpers.ts';

const ALL = ['BR', 'DE', 'SA', 'SE', 'TH', 'US', 'default'];

describe('chatVisibility with the shipped policy', () => {
  const policy = shippedPolicy();
  const cases: { name: string; hits: ChatHit[]; withheld: string[] }[] = [
    { name: 'a clean message goes everywhere', hits: [], withheld: [] },
    {
      name: 'global-lexicon profanity: only SA blanks profanity',
      hits: [{ category: 'profanity', term: 'fuck' }],
      withheld: ['SA'],
    },
    { name: 'terms compare in lower case', hits: [{ category: 'profanity', term: 'FUCK' }], withheld: ['SA'] },
    {
      name: "profanity from the matcher's own list (in no lexicon) counts everywhere",
      hits: [{ category: 'profanity', term: 'shit' }],
      withheld: ['SA'],
    },
    {
      name: 'a DE/BR banned slogan is withheld only where a lexicon lists it',
      hits: [{ category: 'banned_text', term: 'sieg heil' }],
      withheld: ['BR', 'DE'],
    },
    {
      name: 'a TH gambling term is withheld only in TH',
      hits: [{ category: 'banned_text', term: 'บาคาร่า' }],
      withheld: ['TH'],
    },
    {
      name: 'hits add up',
      hits: [
        { category: 'profanity', term: 'fuck' },
        { category: 'banned_text', term: 'heil hitler' },
      ],
      withheld: ['BR', 'DE', 'SA'],
    },
    {
      name: 'a lexicon category no taxonomy category reads restricts nothing',
      hits: [{ category: 'unmapped', term: 'fuck' }],
      withheld: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const v = chatVisibility(policy, c.hits);
      assert.deepEqual(v.withheld, c.withheld);
      assert.deepEqual(
        v.allowed,
        ALL.filter((j) => !c.withheld.includes(j)),
      );
      assert.deepEqual([...new Set(v.restrictions.map((r) => r.jurisdiction))].sort(), c.withheld);
    });
  }

  it('names the rule behind each restriction', () => {
    const v = chatVisibility(policy, [{ category: 'profanity', term: 'fuck' }]);
    assert.deepEqual(v.restrictions, [
      {
        jurisdiction: 'SA',
        category: 'profanity',
        term: 'fuck',
        action: 'blank_video',
        clause: 'Anti-Cyber Crime Law art. 6 (SA): content impinging on public morals',
      },
    ]);
  });
});

describe('chatVisibility with edited policies', () => {
  const edit = (filename: string, from: string, to: string) =>
    loadPolicyBundle(
      shippedPolicyFiles().map((f) => {
        if (f.filename !== filename) return f;
        assert.ok(f.text.includes(from), `${filename} contains ${JSON.stringify(from)}`);
        return { ...f, text: f.text.replace(from, to) };
      }),
    );

  it('a restrictive default withholds from viewers without a jurisdiction of their own', () => {
    const policy = edit(
      'policies/default.yaml',
      'red: 0.50\n        actions: { amber: allow, red: allow }',
      'red: 0.50\n        actions: { amber: allow, red: blank_video }',
    );
    // Every jurisdiction inherits the default's profanity rule unless it overrides it (SA does).
    assert.deepEqual(chatVisibility(policy, [{ category: 'profanity', term: 'fuck' }]).withheld, ALL);
  });

  it('a global rule on a text category withholds everywhere', () => {
    const policy = edit(
      'policies/default.yaml',
      'global:\n',
      'global:\n  profanity:\n    red: 0.5\n    action: kill_stream\n',
    );
    const v = chatVisibility(policy, [{ category: 'profanity', term: 'cunt' }]);
    assert.deepEqual(v.withheld, ALL);
    assert.ok(v.restrictions.every((r) => r.action === 'kill_stream'));
  });
});
