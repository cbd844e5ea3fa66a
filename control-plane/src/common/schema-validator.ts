import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { schemas } from '@flagstream/schemas';
import { FieldError, Problem } from './problem';

/** An Ajv instance over every schema in schemas/, so runtime checks and types share one source; a lookup of its compiled validators. */
function validators(options: ConstructorParameters<typeof Ajv>[0]): { ajv: Ajv; lookup: (schemaId: string) => ValidateFunction } {
  const ajv = new Ajv(options);
  addFormats(ajv);
  for (const schema of Object.values(schemas)) ajv.addSchema(schema);
  const compiled = new Map<string, ValidateFunction>();
  const lookup = (schemaId: string) => {
    let validate = compiled.get(schemaId);
    if (!validate) {
      validate = ajv.getSchema(schemaId);
      if (!validate) throw new Error(`unknown schema ${schemaId}`);
      compiled.set(schemaId, validate);
    }
    return validate;
  };
  return { ajv, lookup };
}

const AJV_OPTIONS = { allErrors: true, discriminator: true, strict: false, useDefaults: true, verbose: true } as const;

const full = validators(AJV_OPTIONS);
export const validatorFor = full.lookup;

/**
 * A schema's validator with the same options, except that it stops at the first error and keeps
 * no schema or data in its errors: Ajv's allErrors and verbose only decide which errors are
 * reported, never whether a value is valid, so its yes or no is validatorFor's, sooner. For hot
 * paths (the events API's encoder, event-encoder.ts): ask it first, and ask validatorFor only
 * about a value it refuses, for the messages.
 */
export const quickValidatorFor = validators({ ...AJV_OPTIONS, allErrors: false, verbose: false }).lookup;

/** Ajv errors as JSON-Pointer field errors, the most specific ones only (no "must match oneOf" noise). */
export function fieldErrors(errors: ErrorObject[] | null | undefined, prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const error of errors ?? []) {
    if (error.keyword === 'oneOf' || error.keyword === 'if' || error.keyword === 'anyOf') continue;
    let path = prefix + error.instancePath;
    let message = error.message ?? 'is invalid';
    if (error.keyword === 'required') path = `${path}/${(error.params as { missingProperty: string }).missingProperty}`;
    if (error.keyword === 'additionalProperties') {
      path = `${path}/${(error.params as { additionalProperty: string }).additionalProperty}`;
      message = 'is not a known field';
    }
    if (error.keyword === 'discriminator') {
      path = `${path}/${(error.params as { tag: string }).tag}`;
      message = `must be one of ${discriminatorValues(error.parentSchema).join(', ')}`;
    }
    // A pattern means little to a reader; the field's description says what is expected.
    const description = (error.parentSchema as { description?: string } | undefined)?.description;
    if (error.keyword === 'pattern' && description) message = `is invalid: ${description}`;
    if (error.keyword === 'enum') message = `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    const key = `${path}:${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path: path || '/', message });
  }
  return out;
}

/** Validates `value` against a schema; throws a 400 problem naming every offending field. */
export function assertValid<T>(schemaId: string, value: unknown, prefix = ''): T {
  const validate = validatorFor(schemaId);
  if (!validate(value)) throw Problem.invalid(fieldErrors(validate.errors, prefix));
  return value as T;
}

function discriminatorValues(schema: unknown): string[] {
  const values: string[] = [];
  const { oneOf = [], $id = '' } = (schema ?? {}) as { oneOf?: { $ref?: string }[]; $id?: string };
  for (const branch of oneOf) {
    const resolved = branch.$ref ? (full.ajv.getSchema(`${$id}${branch.$ref}`)?.schema as Record<string, unknown> | undefined) : (branch as Record<string, unknown>);
    const kind = (resolved?.properties as { kind?: { const?: string; enum?: string[] } } | undefined)?.kind;
    if (kind?.const) values.push(kind.const);
    if (kind?.enum) values.push(...kind.enum);
  }
  return values.length ? values : ['a known kind'];
}
