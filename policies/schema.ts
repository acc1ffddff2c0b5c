// zod schemas of the policy files as written (before defaults are merged and references checked).
import { z } from 'zod';

const score = z.number().min(0).max(1);
const categoryName = z.string().regex(/^[a-z][a-z0-9_]*$/, 'category names are lower_snake_case');
const actionInJurisdiction = z.enum(['allow', 'blank_video', 'mute_audio', 'block']);
const failMode = z.enum(['fail_open', 'quarantine', 'fail_closed']);
const ground = z.enum(['terms_of_service', 'law']);
const kind = z.enum(['audio', 'video']);
const terms = z.array(z.string().min(1));

export const fusionSchema = z.strictObject({
  window: z.int().min(1).max(120),
  enter: z.int().min(1).max(120),
  exit: z.int().min(1).max(120),
  hysteresis: z.number().min(0).max(0.5),
});

const categorySchema = z.strictObject({
  description: z.string().min(1),
  kinds: z.array(kind).min(1),
  ground,
  clause: z.string().min(1),
  signals: z.strictObject({
    scores: z.array(z.string().min(1)).default([]),
    banks: z.array(z.string().min(1)).default([]),
    text: z.array(z.string().min(1)).default([]),
  }),
  fusion: fusionSchema.partial().optional(),
  /** Agreeing reviewers a review item of the category needs (issue 17). */
  reviewers: z.int().min(1).max(9).optional(),
});

const ruleSchema = z.strictObject({
  amber: score.optional(),
  red: score.optional(),
  actions: z.strictObject({ amber: actionInJurisdiction.optional(), red: actionInJurisdiction.optional() }).optional(),
  immediateOnMatch: z.boolean().optional(),
  clause: z.string().min(1).optional(),
  ground: ground.optional(),
});
export type RawRule = z.infer<typeof ruleSchema>;

const jurisdictionBody = {
  name: z.string().min(1).optional(),
  failMode: failMode.optional(),
  reviewAmber: z.boolean().optional(),
  categories: z.record(categoryName, ruleSchema).default({}),
  lexicon: z.record(z.string(), terms).default({}),
};
const jurisdictionBodySchema = z.strictObject(jurisdictionBody);
export type RawJurisdiction = z.infer<typeof jurisdictionBodySchema>;

const globalRuleSchema = z.strictObject({
  red: score,
  immediateOnMatch: z.boolean().default(false),
  action: z.literal('kill_stream'),
  clause: z.string().min(1).optional(),
  ground: ground.optional(),
});

export const baseFileSchema = z.strictObject({
  apiVersion: z.literal('policy/v1'),
  kind: z.literal('PolicyBase'),
  name: z.string().min(1),
  appealUrl: z.string().min(1),
  failAfter: z.int().min(1).max(1000).default(3),
  reviewDeadZone: z.tuple([score, score]).default([0.4, 0.7]),
  /** Review deadlines (issue 17): minutes from an item's creation to its due time. */
  review: z
    .strictObject({
      amberDueMinutes: z.number().min(1).max(100_000).default(60),
      appealDueMinutes: z.number().min(1).max(100_000).default(240),
    })
    .default({ amberDueMinutes: 60, appealDueMinutes: 240 }),
  fusion: fusionSchema,
  taxonomy: z.record(categoryName, categorySchema),
  global: z.record(categoryName, globalRuleSchema).default({}),
  lexicon: z.record(z.string(), terms).default({}),
  jurisdictions: z.record(
    z.string().regex(/^([A-Z]{2}|default)$/, "jurisdiction keys are ISO 3166-1 alpha-2 codes or 'default'"),
    jurisdictionBodySchema,
  ),
});
export type RawBase = z.infer<typeof baseFileSchema>;

export const jurisdictionFileSchema = z.strictObject({
  apiVersion: z.literal('policy/v1'),
  kind: z.literal('Jurisdiction'),
  code: z.string().regex(/^[A-Z]{2}$/, 'code is an ISO 3166-1 alpha-2 code, upper case'),
  ...jurisdictionBody,
});
export type RawJurisdictionFile = z.infer<typeof jurisdictionFileSchema>;

export const fileHeaderSchema = z.looseObject({
  apiVersion: z.literal('policy/v1'),
  kind: z.enum(['PolicyBase', 'Jurisdiction']),
});
