import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffPolicies, thresholdChanges } from '../../policies/diff.ts';
import { PolicyError } from '../../policies/errors.ts';
import { lexiconFor, loadPolicyBundle, parsePolicy } from '../../policies/loader.ts';
import type { PolicyFile } from '../../policies/types.ts';
import { shippedPolicy, shippedPolicyFiles } from './helpers.ts';

function replaceIn(files: PolicyFile[], filename: string, from: string, to: string): PolicyFile[] {
  return files.map((f) => {
    if (f.filename !== filename) return f;
    assert.ok(f.text.includes(from), `${filename} contains ${JSON.stringify(from)}`);
    return { ...f, text: f.text.replace(from, to) };
  });
}

function lineOf(text: string, needle: string): number {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, `needle ${JSON.stringify(needle)} present`);
  return text.slice(0, i).split('\n').length;
}

function refused(files: PolicyFile[]): PolicyError {
  try {
    loadPolicyBundle(files);
  } catch (e) {
    assert.ok(e instanceof PolicyError, `PolicyError, got ${String(e)}`);
    return e;
  }
  assert.fail('the broken bundle was accepted');
}

describe('shipped policy files', () => {
  it('every shipped file validates and the bundle has the required jurisdictions', () => {
    const files = shippedPolicyFiles();
    assert.ok(files.length >= 7, `found ${files.map((f) => f.filename).join(', ')}`);
    const p = loadPolicyBundle(files);
    for (const code of ['default', 'SE', 'DE', 'SA', 'BR', 'TH', 'US'])
      assert.ok(p.jurisdictions[code], `jurisdiction ${code}`);
    for (const cat of [
      'sexual_explicit',
      'sexual_suggestive',
      'known_bad_match',
      'copyright_audio',
      'banned_text',
      'profanity',
    ]) {
      assert.ok(p.taxonomy[cat], `category ${cat}`);
    }
    assert.match(p.version, /^[0-9a-f]{16}$/);
    assert.deepEqual(p.files.map((f) => f.file).sort(), files.map((f) => f.filename).sort());
  });

  it('ships the jurisdiction differences the product promises', () => {
    const p = shippedPolicy();
    assert.equal(p.global.known_bad_match?.immediateOnMatch, true);
    assert.equal(p.global.known_bad_match?.action, 'kill_stream');
    assert.equal(p.jurisdictions.DE?.categories.copyright_audio?.actions.red, 'mute_audio');
    assert.equal(p.jurisdictions.SE?.categories.copyright_audio?.actions.red, 'allow');
    assert.equal(p.jurisdictions.SA?.categories.sexual_suggestive?.actions.red, 'blank_video');
    assert.equal(p.jurisdictions.SE?.categories.sexual_suggestive?.actions.red, 'allow');
    assert.equal(p.jurisdictions.SA?.failMode, 'fail_closed');
    assert.equal(p.jurisdictions.DE?.failMode, 'quarantine');
    assert.equal(p.jurisdictions.SE?.failMode, 'fail_open');
    // Inheritance: SE lists no profanity rule and gets the default's.
    assert.deepEqual(p.jurisdictions.SE?.categories.profanity, p.jurisdictions.default?.categories.profanity);
    // Jurisdiction clauses override the taxonomy's.
    assert.match(p.jurisdictions.DE?.categories.copyright_audio?.clause ?? '', /UrhDaG/);
  });

  it('single-file form: parsePolicy accepts the base file alone', () => {
    const base = shippedPolicyFiles().find((f) => f.filename.endsWith('default.yaml'));
    assert.ok(base);
    const p = parsePolicy(base.text, base.filename);
    assert.deepEqual(Object.keys(p.jurisdictions), ['default']);
  });

  it('the version is a content hash: stable for the same text, new for any edit', () => {
    const files = shippedPolicyFiles();
    assert.equal(loadPolicyBundle(files).version, loadPolicyBundle([...files].reverse()).version);
    const edited = replaceIn(files, 'policies/jurisdictions/DE.yaml', 'red: 0.60', 'red: 0.65');
    assert.notEqual(loadPolicyBundle(edited).version, loadPolicyBundle(files).version);
  });

  it('lexiconFor merges the global lexicon with a jurisdiction', () => {
    const p = shippedPolicy();
    assert.ok(lexiconFor(p, 'DE').banned_text?.includes('sieg heil'));
    assert.ok(!lexiconFor(p, 'SE').banned_text?.includes('sieg heil'));
    assert.ok(lexiconFor(p, 'SE').profanity?.includes('fuck'));
  });
});

describe('broken policy files are refused with file, line and reason', () => {
  const DE = 'policies/jurisdictions/DE.yaml';
  const BASE = 'policies/default.yaml';
  const cases: {
    name: string;
    file: string;
    from: string;
    to: string;
    code: string;
    lineNeedle: string;
    reason: RegExp;
  }[] = [
    {
      name: 'YAML syntax error',
      file: DE,
      from: 'red: 0.60',
      to: 'red: "0.60',
      code: 'POL_ERR_YAML',
      lineNeedle: 'red: "0.60',
      reason: /./,
    },
    {
      name: 'threshold out of range',
      file: DE,
      from: 'red: 0.60',
      to: 'red: 1.60',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'red: 1.60',
      reason: /1|less|<=/,
    },
    {
      name: 'unknown action',
      file: DE,
      from: 'red: mute_audio',
      to: 'red: mute_video',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'red: mute_video',
      reason: /mute_audio|option|expected/i,
    },
    {
      name: 'kill_stream is not a jurisdiction action',
      file: DE,
      from: 'red: mute_audio',
      to: 'red: kill_stream',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'red: kill_stream',
      reason: /./,
    },
    {
      name: 'unknown key (typo)',
      file: DE,
      from: 'failMode: quarantine',
      to: 'failmode: quarantine',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'failmode:',
      reason: /unknown key 'failmode'/,
    },
    {
      name: 'unknown fail mode',
      file: DE,
      from: 'failMode: quarantine',
      to: 'failMode: panic',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'failMode: panic',
      reason: /./,
    },
    {
      name: 'amber above red',
      file: DE,
      from: 'amber: 0.40\n    red: 0.60',
      to: 'amber: 0.70\n    red: 0.60',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'amber: 0.70',
      reason: /amber threshold \(0.7\) is above red \(0.6\)/,
    },
    {
      name: 'unknown category in a jurisdiction',
      file: DE,
      from: '  copyright_audio:\n    amber',
      to: '  copyright_music:\n    amber',
      code: 'POL_ERR_REFERENCE',
      lineNeedle: 'copyright_music:',
      reason: /unknown category 'copyright_music'/,
    },
    {
      name: 'bad jurisdiction code',
      file: DE,
      from: 'code: DE',
      to: 'code: Deu',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'code: Deu',
      reason: /ISO 3166/,
    },
    {
      name: 'duplicate jurisdiction across files',
      file: 'policies/jurisdictions/SE.yaml',
      from: 'code: SE',
      to: 'code: DE',
      code: 'POL_ERR_DUPLICATE',
      lineNeedle: 'code: DE',
      reason: /DE is already defined in policies\/jurisdictions\/DE.yaml/,
    },
    {
      name: 'lexicon category that feeds nothing',
      file: DE,
      from: 'lexicon:\n  banned_text:',
      to: 'lexicon:\n  slurs:',
      code: 'POL_ERR_REFERENCE',
      lineNeedle: 'slurs:',
      reason: /lexicon category 'slurs'/,
    },
    {
      name: 'mute_audio on a video-only category',
      file: BASE,
      from: 'actions: { amber: allow, red: blank_video }\n      sexual_suggestive',
      to: 'actions: { amber: allow, red: mute_audio }\n      sexual_suggestive',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'actions: { amber: allow, red: mute_audio }',
      reason: /mute_audio on 'sexual_explicit'/,
    },
    {
      name: 'enter larger than window',
      file: BASE,
      from: 'enter: 3',
      to: 'enter: 9',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'enter: 9',
      reason: /enter \(9\) exceeds window \(6\)/,
    },
    {
      name: 'global rule on an unknown category',
      file: BASE,
      from: 'global:\n  known_bad_match:',
      to: 'global:\n  known_bad_matches:',
      code: 'POL_ERR_REFERENCE',
      lineNeedle: 'known_bad_matches:',
      reason: /unknown category 'known_bad_matches'/,
    },
    {
      name: 'wrong apiVersion',
      file: BASE,
      from: 'apiVersion: policy/v1',
      to: 'apiVersion: policy/v2',
      code: 'POL_ERR_SCHEMA',
      lineNeedle: 'apiVersion: policy/v2',
      reason: /policy\/v1/,
    },
    {
      name: 'duplicate key',
      file: DE,
      from: 'reviewAmber: true',
      to: 'reviewAmber: true\nreviewAmber: false',
      code: 'POL_ERR_YAML',
      lineNeedle: 'reviewAmber: false',
      reason: /unique|duplicate/i,
    },
    // found by bench/fuzz.ts: yaml throws these while converting, and they answered 500
    {
      name: 'alias before its anchor',
      file: DE,
      from: 'failMode: quarantine',
      to: 'failMode: *nowhere',
      code: 'POL_ERR_YAML',
      lineNeedle: '*nowhere',
      reason: /alias/i,
    },
    {
      name: 'alias bomb',
      file: DE,
      from: 'reviewAmber: true',
      to: 'reviewAmber: true\nx0: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nx1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nx2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nx3: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
      code: 'POL_ERR_YAML',
      lineNeedle: 'x1: &b',
      reason: /alias|resource/i,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const files = replaceIn(shippedPolicyFiles(), c.file, c.from, c.to);
      const text = files.find((f) => f.filename === c.file)?.text ?? '';
      const err = refused(files);
      assert.equal(err.code, c.code, err.message);
      assert.equal(err.file, c.file, err.message);
      assert.equal(err.line, lineOf(text, c.lineNeedle), err.message);
      assert.match(err.reason, c.reason, err.message);
      assert.equal(err.statusCode, 422);
      assert.ok(err.message.includes(`${c.file}:${err.line}`), err.message);
    });
  }

  it('a bundle without a base file is refused', () => {
    const err = refused(shippedPolicyFiles().filter((f) => !f.filename.endsWith('default.yaml')));
    assert.equal(err.code, 'POL_ERR_NO_BASE');
  });

  it('a jurisdiction rule for a category the default lacks must be complete', () => {
    let files = replaceIn(
      shippedPolicyFiles(),
      'policies/default.yaml',
      '      profanity:\n        amber: 0.40\n        red: 0.50\n        actions: { amber: allow, red: allow }\n',
      '',
    );
    // SA's profanity rule is complete on its own: accepted.
    assert.equal(loadPolicyBundle(files).jurisdictions.SA?.categories.profanity?.red, 0.5);
    files = replaceIn(files, 'policies/jurisdictions/SA.yaml', '  profanity:\n    amber: 0.40\n', '  profanity:\n');
    const err = refused(files);
    assert.equal(err.file, 'policies/jurisdictions/SA.yaml');
    assert.equal(
      err.line,
      lineOf(files.find((f) => f.filename === 'policies/jurisdictions/SA.yaml')?.text ?? '', '  profanity:'),
    );
    assert.match(err.reason, /rule needs amber \(nothing to inherit/);
  });
});

describe('diffPolicies', () => {
  it('lists exactly the changed thresholds and actions', () => {
    const files = shippedPolicyFiles();
    const before = loadPolicyBundle(files);
    const after = loadPolicyBundle(
      replaceIn(
        replaceIn(files, 'policies/jurisdictions/DE.yaml', 'red: 0.60', 'red: 0.65'),
        'policies/jurisdictions/SA.yaml',
        'failMode: fail_closed',
        'failMode: quarantine',
      ),
    );
    const changes = diffPolicies(before, after);
    assert.deepEqual(
      changes.map((c) => [c.path, c.from, c.to]),
      [
        ['jurisdictions.DE.categories.copyright_audio.red', 0.6, 0.65],
        ['jurisdictions.SA.failMode', 'fail_closed', 'quarantine'],
      ],
    );
    assert.equal(thresholdChanges(changes).length, 2);
    assert.deepEqual(diffPolicies(before, before), []);
  });
});
