// zod schemas as the single source for request validation (zod) and the OpenAPI document (JSON
// Schema generated from the same zod schema). Response schemas are documentation only: replies are
// serialized with JSON.stringify, so a schema never silently drops a field.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { SrvError } from '../errors.ts';

const ZOD_OF = new WeakMap<object, z.ZodType>();

/** JSON Schema for fastify/swagger that remembers its zod schema for validation. */
export function zs<T extends z.ZodType>(schema: T, io: 'input' | 'output' = 'input'): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: 'draft-7', io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  ZOD_OF.set(json, schema);
  return json;
}

/** Documentation-only JSON Schema of a reply. */
export function doc<T extends z.ZodType>(schema: T): Record<string, unknown> {
  return zs(schema, 'output');
}

function describeIssues(where: string, error: z.ZodError): string {
  return `invalid ${where}: ${error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ')}`;
}

/** Installs zod validation and plain JSON serialization in this encapsulation context. */
export function useZod(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const zod = ZOD_OF.get(schema as object);
    if (!zod) return () => true;
    return (data: unknown) => {
      const r = zod.safeParse(data);
      return r.success
        ? { value: r.data }
        : { error: new SrvError('SRV_ERR_BAD_REQUEST', describeIssues(httpPart ?? 'request', r.error)) };
    };
  });
  app.setSerializerCompiler(() => (data: unknown) => JSON.stringify(data));
}

// ---- shared pieces

export const ErrorReply = z.object({
  statusCode: z.number(),
  code: z.string(),
  error: z.string(),
  message: z.string(),
});
export const StreamIdParam = z.object({
  streamId: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[A-Za-z0-9._~-]+$/, 'stream id: letters, digits, . _ ~ -'),
});
export const IdParam = z.object({ id: z.string().min(1).max(200) });
export const Limit = z.coerce.number().int().min(1).max(1000).optional();
/** ?streamId=&limit= of the list routes (decisions, statements, appeals). */
export const ListQuery = z.object({ streamId: z.string().optional(), limit: Limit }).strict();
export const Jurisdiction = z
  .string()
  .regex(/^([A-Z]{2}|default|\*)$/, "ISO 3166-1 alpha-2 (upper case), 'default' or '*'");
/** Any JSON object (documentation of replies whose shape lives in the store types). */
export const AnyObject = z.record(z.string(), z.unknown());
/** The error replies most /v1 routes document. */
export const errorReplies = {
  400: doc(ErrorReply),
  401: doc(ErrorReply),
  403: doc(ErrorReply),
  404: doc(ErrorReply),
  503: doc(ErrorReply),
};
/** OpenAPI security of a Bearer-guarded route. */
export const bearer = [{ bearerAuth: [] }];
