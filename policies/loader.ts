// Policy loader: YAML text (handed over by the caller) -> schema check -> merged, versioned Policy.
// Every problem is reported with the file, the 1-based line and the reason.
import { Document, isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Alias } from 'yaml';
import type { z } from 'zod';
import { canonicalJson, sha256Hex } from './canonical.ts';
import { PolicyError, type PolicyErrorCode, type PolicyIssue } from './errors.ts';
import {
  baseFileSchema,
  fileHeaderSchema,
  jurisdictionFileSchema,
  type RawBase,
  type RawJurisdiction,
  type RawJurisdictionFile,
  type RawRule,
} from './schema.ts';
import type { CategoryDef, CategoryRule, GlobalRule, JurisdictionPolicy, Policy, PolicyFile } from './types.ts';

type Path = (string | number)[];

interface ParsedFile {
  filename: string;
  version: string;
  doc: Document;
  lines: LineCounter;
}

function issueAt(file: ParsedFile, path: Path, reason: string, pointAtKey = false): PolicyIssue {
  const { line, col } = positionOf(file, path, pointAtKey);
  return { file: file.filename, line, column: col, path: path.join('.'), reason };
}

/** Walks the YAML AST as far as the path exists; the deepest node found gives the position. */
function positionOf(file: ParsedFile, path: Path, pointAtKey: boolean): { line: number; col: number } {
  let node: unknown = file.doc.contents;
  let offset = isNode(node) && node.range ? node.range[0] : 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const last = i === path.length - 1;
      const keyNode = pair.key;
      // Collections start on the line after their key: the key's line is where a reader looks.
      if ((last && (pointAtKey || isMap(pair.value) || isSeq(pair.value))) || !isNode(pair.value)) {
        if (isNode(keyNode) && keyNode.range) offset = keyNode.range[0];
        node = pair.value;
        if (!isNode(pair.value)) break;
        continue;
      }
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (!isNode(item)) break;
      node = item;
    } else {
      break;
    }
    if (isNode(node) && node.range) offset = node.range[0];
  }
  return file.lines.linePos(offset);
}

function parseYaml(filename: string, text: string): ParsedFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      'POL_ERR_YAML',
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        return { file: filename, line: pos.line, column: pos.col, path: '', reason: firstLine(e.message) };
      }),
    );
  }
  return { filename, version: sha256Hex(text).slice(0, 16), doc, lines };
}

/**
 * The document as plain data. yaml reports syntax errors in `doc.errors` but throws on aliases it
 * meets while converting (an alias before its anchor, an alias bomb past its maxAliasCount): those
 * are YAML errors of the file too, at the alias (the fuzz benchmark found them answering 500).
 */
function toData(file: ParsedFile): unknown {
  try {
    return file.doc.toJS();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    let at: Alias | undefined;
    visit(file.doc, {
      Alias(_key, node) {
        if (!at || message.endsWith(`: ${node.source}`)) at = node;
        return message.endsWith(`: ${node.source}`) ? visit.BREAK : undefined;
      },
    });
    const pos = file.lines.linePos(at?.range?.[0] ?? 0);
    throw new PolicyError('POL_ERR_YAML', [
      { file: file.filename, line: pos.line, column: pos.col, path: '', reason: firstLine(message) },
    ]);
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

function check<S extends z.ZodType>(file: ParsedFile, schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0] ?? '';
      return issueAt(file, [...path, key], `unknown key '${issue.keys.join("', '")}'`, true);
    }
    return issueAt(file, path, issue.message);
  });
  throw new PolicyError('POL_ERR_SCHEMA', issues);
}

function rulePath(owner: { file: ParsedFile; prefix: Path }, category: string): Path {
  return [...owner.prefix, 'categories', category];
}

interface Owned<T> {
  file: ParsedFile;
  prefix: Path;
  body: T;
}

/**
 * Loads a bundle: exactly one `kind: PolicyBase` file plus any number of `kind: Jurisdiction`
 * files (one per country). The caller reads the files (policies/ does no I/O). Throws PolicyError.
 */
export function loadPolicyBundle(files: readonly PolicyFile[]): Policy {
  if (files.length === 0)
    throw new PolicyError('POL_ERR_NO_BASE', [
      { file: '', line: 0, column: 0, path: '', reason: 'no policy files given' },
    ]);
  const sorted = [...files].sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
  let base: { file: ParsedFile; raw: RawBase } | undefined;
  const extra: { file: ParsedFile; raw: RawJurisdictionFile }[] = [];
  const parsed: ParsedFile[] = [];
  for (const f of sorted) {
    const file = parseYaml(f.filename, f.text);
    parsed.push(file);
    const json = toData(file);
    const header = check(file, fileHeaderSchema, json);
    if (header.kind === 'PolicyBase') {
      if (base) {
        throw new PolicyError('POL_ERR_DUPLICATE', [
          issueAt(file, ['kind'], `second PolicyBase file (the first is ${base.file.filename})`),
        ]);
      }
      base = { file, raw: check(file, baseFileSchema, json) };
    } else {
      extra.push({ file, raw: check(file, jurisdictionFileSchema, json) });
    }
  }
  if (!base) {
    throw new PolicyError('POL_ERR_NO_BASE', [
      { file: sorted[0]?.filename ?? '', line: 1, column: 1, path: '', reason: "no file with 'kind: PolicyBase'" },
    ]);
  }
  const policy = build(base.file, base.raw, extra);
  policy.files = parsed.map((p) => ({ file: p.filename, version: p.version }));
  policy.version = sha256Hex(canonicalJson(policy.files)).slice(0, 16);
  return policy;
}

/** Loads one self-contained file (a PolicyBase with its jurisdictions inline). */
export function parsePolicy(text: string, filename: string): Policy {
  return loadPolicyBundle([{ filename, text }]);
}

function build(baseFile: ParsedFile, raw: RawBase, extra: { file: ParsedFile; raw: RawJurisdictionFile }[]): Policy {
  const issues: { code: PolicyErrorCode; issue: PolicyIssue }[] = [];
  const fail = (code: PolicyErrorCode, file: ParsedFile, path: Path, reason: string, atKey = false) =>
    issues.push({ code, issue: issueAt(file, path, reason, atKey) });

  if (raw.fusion.enter > raw.fusion.window)
    fail(
      'POL_ERR_SCHEMA',
      baseFile,
      ['fusion', 'enter'],
      `enter (${raw.fusion.enter}) exceeds window (${raw.fusion.window})`,
    );
  const taxonomy: Record<string, CategoryDef> = {};
  const textCategories = new Set<string>();
  for (const [name, c] of Object.entries(raw.taxonomy)) {
    const fusion = { ...raw.fusion, ...c.fusion };
    if (c.fusion && fusion.enter > fusion.window)
      fail(
        'POL_ERR_SCHEMA',
        baseFile,
        ['taxonomy', name, 'fusion'],
        `enter (${fusion.enter}) exceeds window (${fusion.window}) with the base fusion settings merged`,
      );
    if (c.signals.scores.length + c.signals.banks.length + c.signals.text.length === 0) {
      fail('POL_ERR_SCHEMA', baseFile, ['taxonomy', name, 'signals'], 'category is fed by no signal');
    }
    for (const t of c.signals.text) textCategories.add(t);
    taxonomy[name] = {
      name,
      description: c.description,
      kinds: [...new Set(c.kinds)],
      ground: c.ground,
      clause: c.clause,
      signals: c.signals,
      fusion,
      ...(c.reviewers !== undefined ? { reviewers: c.reviewers } : {}),
    };
  }
  if (raw.reviewDeadZone[0] >= raw.reviewDeadZone[1])
    fail('POL_ERR_SCHEMA', baseFile, ['reviewDeadZone'], 'dead zone lower bound must be below its upper bound');

  const global: Record<string, GlobalRule> = {};
  for (const [name, g] of Object.entries(raw.global)) {
    const def = taxonomy[name];
    if (!def) {
      fail('POL_ERR_REFERENCE', baseFile, ['global', name], `unknown category '${name}' (not in taxonomy)`, true);
      continue;
    }
    global[name] = {
      red: g.red,
      immediateOnMatch: g.immediateOnMatch,
      action: 'kill_stream',
      clause: g.clause ?? def.clause,
      ground: g.ground ?? def.ground,
    };
  }

  const checkLexicon = (file: ParsedFile, prefix: Path, lex: Record<string, string[]>) => {
    const out: Record<string, string[]> = {};
    for (const [cat, list] of Object.entries(lex)) {
      if (!textCategories.has(cat))
        fail(
          'POL_ERR_REFERENCE',
          file,
          [...prefix, 'lexicon', cat],
          `lexicon category '${cat}' feeds no taxonomy category (add it to a category's signals.text)`,
          true,
        );
      out[cat] = [...new Set(list.map((t) => t.toLowerCase()))];
    }
    return out;
  };
  const lexicon = checkLexicon(baseFile, [], raw.lexicon);

  const owners: Owned<RawJurisdiction & { code: string }>[] = [];
  for (const [code, body] of Object.entries(raw.jurisdictions))
    owners.push({ file: baseFile, prefix: ['jurisdictions', code], body: { ...body, code } });
  for (const e of extra) owners.push({ file: e.file, prefix: [], body: e.raw });

  const defaultOwner = owners.find((o) => o.body.code === 'default');
  if (!defaultOwner) {
    fail(
      'POL_ERR_REFERENCE',
      baseFile,
      ['jurisdictions'],
      "no 'default' jurisdiction (the rules for viewers whose jurisdiction has no entry)",
      true,
    );
    throw new PolicyError(
      issues[0]!.code,
      issues.map((i) => i.issue),
    );
  }

  const seen = new Map<string, ParsedFile>();
  const jurisdictions: Record<string, JurisdictionPolicy> = {};
  const defaultRules: Record<string, CategoryRule> = {};
  const resolveRule = (
    o: Owned<RawJurisdiction>,
    name: string,
    r: RawRule,
    inherited: CategoryRule | undefined,
  ): CategoryRule | undefined => {
    const def = taxonomy[name];
    if (!def) {
      fail('POL_ERR_REFERENCE', o.file, rulePath(o, name), `unknown category '${name}' (not in taxonomy)`, true);
      return undefined;
    }
    const amber = r.amber ?? inherited?.amber;
    const red = r.red ?? inherited?.red;
    const amberAction = r.actions?.amber ?? inherited?.actions.amber ?? 'allow';
    const redAction = r.actions?.red ?? inherited?.actions.red;
    if (amber === undefined || red === undefined || redAction === undefined) {
      const missing = [
        amber === undefined && 'amber',
        red === undefined && 'red',
        redAction === undefined && 'actions.red',
      ]
        .filter(Boolean)
        .join(', ');
      fail(
        'POL_ERR_SCHEMA',
        o.file,
        rulePath(o, name),
        `rule needs ${missing} (nothing to inherit from the default jurisdiction)`,
      );
      return undefined;
    }
    if (amber > red)
      fail(
        'POL_ERR_SCHEMA',
        o.file,
        [...rulePath(o, name), r.amber !== undefined ? 'amber' : 'red'],
        `amber threshold (${amber}) is above red (${red})`,
      );
    if ((amberAction === 'mute_audio' || redAction === 'mute_audio') && !def.kinds.includes('audio')) {
      fail(
        'POL_ERR_SCHEMA',
        o.file,
        [...rulePath(o, name), 'actions'],
        `mute_audio on '${name}', which is not fed by audio`,
      );
    }
    return {
      amber,
      red,
      actions: { amber: amberAction, red: redAction },
      immediateOnMatch: r.immediateOnMatch ?? inherited?.immediateOnMatch ?? false,
      clause: r.clause ?? inherited?.clause ?? def.clause,
      ground: r.ground ?? inherited?.ground ?? def.ground,
    };
  };

  const ordered = [defaultOwner, ...owners.filter((o) => o !== defaultOwner)];
  for (const o of ordered) {
    const code = o.body.code;
    const prev = seen.get(code);
    if (prev) {
      fail(
        'POL_ERR_DUPLICATE',
        o.file,
        o.prefix.length ? o.prefix : ['code'],
        `jurisdiction ${code} is already defined in ${prev.filename}`,
        o.prefix.length > 0,
      );
      continue;
    }
    seen.set(code, o.file);
    const isDefault = code === 'default';
    const dflt = jurisdictions.default;
    if (isDefault) {
      if (!o.body.failMode) fail('POL_ERR_SCHEMA', o.file, [...o.prefix], "the default jurisdiction needs 'failMode'");
      if (o.body.reviewAmber === undefined)
        fail('POL_ERR_SCHEMA', o.file, [...o.prefix], "the default jurisdiction needs 'reviewAmber'");
    }
    const categories: Record<string, CategoryRule> = isDefault ? {} : { ...defaultRules };
    for (const [name, r] of Object.entries(o.body.categories)) {
      const rule = resolveRule(o, name, r, isDefault ? undefined : defaultRules[name]);
      if (rule) categories[name] = rule;
    }
    if (isDefault) Object.assign(defaultRules, categories);
    jurisdictions[code] = {
      code,
      name: o.body.name ?? (isDefault ? 'Default (no jurisdiction rules)' : code),
      failMode: o.body.failMode ?? dflt?.failMode ?? 'fail_open',
      reviewAmber: o.body.reviewAmber ?? dflt?.reviewAmber ?? true,
      categories,
      lexicon: checkLexicon(o.file, o.prefix, o.body.lexicon),
      source: { file: o.file.filename, line: positionOf(o.file, o.prefix, true).line },
    };
  }

  if (issues.length > 0)
    throw new PolicyError(
      issues[0]!.code,
      issues.map((i) => i.issue),
    );
  return {
    version: '',
    name: raw.name,
    files: [],
    appealUrl: raw.appealUrl.replace(/\/+$/, ''),
    failAfter: raw.failAfter,
    reviewDeadZone: raw.reviewDeadZone,
    reviewDue: { amberMs: raw.review.amberDueMinutes * 60_000, appealMs: raw.review.appealDueMinutes * 60_000 },
    taxonomy,
    global,
    lexicon,
    jurisdictions,
  };
}

/** Terms per lexicon category for one jurisdiction (global + its own), e.g. to configure a text matcher. */
export function lexiconFor(policy: Policy, jurisdiction?: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const add = (lex: Record<string, string[]> | undefined) => {
    for (const [cat, list] of Object.entries(lex ?? {})) out[cat] = [...new Set([...(out[cat] ?? []), ...list])];
  };
  add(policy.lexicon);
  if (jurisdiction === undefined) for (const j of Object.values(policy.jurisdictions)) add(j.lexicon);
  else add(policy.jurisdictions[jurisdiction]?.lexicon);
  return out;
}

/** The jurisdiction key whose rules apply to a viewer ('default' when unknown or unlisted). */
export function jurisdictionKey(policy: Policy, jurisdiction: string | undefined): string {
  return jurisdiction !== undefined && policy.jurisdictions[jurisdiction.toUpperCase()]
    ? jurisdiction.toUpperCase()
    : 'default';
}
