// Coded errors of the policy layer (POL_ERR_*), from the one factory (errors/coded.ts); each carries
// every issue found with its file:line.
import { codedErrors, type ErrorSpec } from '../errors/coded.ts';

export interface PolicyIssue {
  file: string;
  /** 1-based; 0 when the position is unknown. */
  line: number;
  column: number;
  /** Dotted path inside the document, '' for the document itself. */
  path: string;
  reason: string;
}

const TITLES = {
  POL_ERR_YAML: 'policy file is not valid YAML',
  POL_ERR_SCHEMA: 'policy file does not match the schema',
  POL_ERR_REFERENCE: 'policy refers to something it does not define',
  POL_ERR_DUPLICATE: 'policy defines the same thing twice',
  POL_ERR_NO_BASE: 'policy bundle has no base file',
  POL_ERR_REVIEW_STATE: 'review item is not in a state that allows this',
} as const;

export type PolicyErrorCode = keyof typeof TITLES;

// Each code's message: `CODE: title: file:line:col at path: first reason (+N more)`; 422 unless the
// throw site says otherwise (409 for a review item's state, 503 while no policy is loaded).
const PolicyErrors = codedErrors(
  Object.fromEntries(
    Object.entries(TITLES).map(([code, title]) => [code, { status: 422, message: `${code}: ${title}: %s` }]),
  ) as Record<PolicyErrorCode, ErrorSpec>,
);

export class PolicyError extends PolicyErrors {
  /** Every problem found; the first one is in the message. */
  readonly issues: PolicyIssue[];
  /** First issue's file/line/reason, for callers that show one. */
  readonly file: string;
  readonly line: number;
  readonly reason: string;

  constructor(code: PolicyErrorCode, issues: PolicyIssue[], statusCode = 422) {
    const first = issues[0] ?? { file: '', line: 0, column: 0, path: '', reason: TITLES[code] };
    const where = first.line > 0 ? `${first.file}:${first.line}:${first.column}` : first.file;
    const more = issues.length > 1 ? ` (+${issues.length - 1} more)` : '';
    super(code, `${where}${first.path ? ` at ${first.path}` : ''}: ${first.reason}${more}`, { statusCode });
    this.issues = issues;
    this.file = first.file;
    this.line = first.line;
    this.reason = first.reason;
  }
}
