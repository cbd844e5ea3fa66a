import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * An AWS service's published API model (botocore's `service-2.json`, the same model the
 * SDKs are generated from) and a validator of requests and answers against it: required
 * members, types, string lengths and patterns, enums, list and map sizes, number ranges.
 * The managed-flink stand-in refuses every request that fails it, as the service does, and
 * the target's unit tests check every request it builds with it. Not used by the control
 * plane at run time.
 *
 * The model comes from botocore's wheel on PyPI, fetched by `npm run bootstrap` (see
 * BOTOCORE in scripts/bootstrap.mjs) into node_modules/.cache; it is never committed.
 */

export const BOTOCORE_VERSION = '1.44.5';
const REPO_ROOT = resolve(__dirname, '..', '..', '..');
export const MANAGED_FLINK_MODEL = 'kinesisanalyticsv2/2018-05-23/service-2.json';

export function serviceModelPath(model: string = MANAGED_FLINK_MODEL): string {
  return join(REPO_ROOT, 'node_modules', '.cache', 'flagstream', `botocore-${BOTOCORE_VERSION}`, model);
}

export interface Shape {
  type: 'structure' | 'list' | 'map' | 'string' | 'integer' | 'long' | 'boolean' | 'timestamp' | 'blob' | 'float' | 'double';
  members?: Record<string, { shape: string }>;
  required?: string[];
  member?: { shape: string };
  key?: { shape: string };
  value?: { shape: string };
  min?: number;
  max?: number;
  pattern?: string;
  enum?: string[];
  exception?: boolean;
}

export interface ServiceModel {
  metadata: { apiVersion: string; protocol: string; jsonVersion?: string; targetPrefix?: string; serviceId: string; uid: string };
  operations: Record<string, { name: string; input?: { shape: string }; output?: { shape: string }; errors?: { shape: string }[] }>;
  shapes: Record<string, Shape>;
}

export function loadServiceModel(path: string = serviceModelPath()): ServiceModel {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`the API model ${path} is missing (${(error as Error).message}); \`npm run bootstrap\` fetches it from botocore ${BOTOCORE_VERSION} on PyPI`);
  }
  return JSON.parse(text) as ServiceModel;
}

/** One constraint a value fails: the member's path (as in the request) and what it must satisfy. */
export interface Violation {
  path: string;
  message: string;
  value?: unknown;
}

export class ModelValidator {
  private readonly patterns = new Map<string, RegExp>();

  constructor(readonly model: ServiceModel) {}

  /** The operation's input shape checked against `input` (a parsed JSON body, or an SDK command's input). */
  validateInput(operation: string, input: unknown): Violation[] {
    const op = this.model.operations[operation];
    if (!op) throw new Error(`${this.model.metadata.uid} has no operation ${operation}`);
    if (!op.input) return [];
    return this.validateShape(op.input.shape, input ?? {}, '');
  }

  validateOutput(operation: string, output: unknown): Violation[] {
    const op = this.model.operations[operation];
    if (!op) throw new Error(`${this.model.metadata.uid} has no operation ${operation}`);
    if (!op.output) return [];
    return this.validateShape(op.output.shape, output ?? {}, '');
  }

  validateShape(shapeName: string, value: unknown, path: string): Violation[] {
    const out: Violation[] = [];
    this.check(shapeName, value, path, out);
    return out;
  }

  private check(shapeName: string, value: unknown, path: string, out: Violation[]): void {
    const shape = this.model.shapes[shapeName];
    if (!shape) throw new Error(`the model has no shape ${shapeName}`);
    const fail = (message: string) => out.push({ path: path || shapeName, message, value });
    switch (shape.type) {
      case 'structure': {
        if (!isObject(value)) return void fail(`must be an object (${shapeName})`);
        const members = shape.members ?? {};
        for (const name of shape.required ?? []) {
          if (value[name] === undefined || value[name] === null) out.push({ path: join_(path, name), message: 'Member must not be null' });
        }
        for (const [name, member] of Object.entries(value)) {
          if (member === undefined) continue;
          if (!(name in members)) {
            out.push({ path: join_(path, name), message: `is not a member of ${shapeName}` });
            continue;
          }
          if (member === null) continue;
          this.check(members[name].shape, member, join_(path, name), out);
        }
        return;
      }
      case 'list': {
        if (!Array.isArray(value)) return void fail('must be a list');
        this.size(shape, value.length, fail, 'length');
        value.forEach((item, i) => this.check(shape.member!.shape, item, `${path}[${i}]`, out));
        return;
      }
      case 'map': {
        if (!isObject(value)) return void fail('must be a map');
        const entries = Object.entries(value);
        this.size(shape, entries.length, fail, 'length');
        for (const [key, item] of entries) {
          this.check(shape.key!.shape, key, `${path}{key ${JSON.stringify(key).slice(0, 40)}}`, out);
          this.check(shape.value!.shape, item, `${path}[${JSON.stringify(key).slice(0, 40)}]`, out);
        }
        return;
      }
      case 'string': {
        if (typeof value !== 'string') return void fail('must be a string');
        if (shape.enum && !shape.enum.includes(value)) return void fail(`Member must satisfy enum value set: [${shape.enum.join(', ')}]`);
        this.size(shape, [...value].length, fail, 'length');
        if (shape.pattern && !this.regex(shape.pattern).test(value)) fail(`Member must satisfy regular expression pattern: ${shape.pattern}`);
        return;
      }
      case 'integer':
      case 'long': {
        if (typeof value !== 'number' || !Number.isInteger(value)) return void fail(`must be an ${shape.type === 'long' ? '64-bit ' : ''}integer`);
        if (shape.type === 'integer' && (value < -(2 ** 31) || value >= 2 ** 31)) return void fail('must fit in 32 bits');
        this.size(shape, value, fail, 'value');
        return;
      }
      case 'float':
      case 'double':
        if (typeof value !== 'number' || !Number.isFinite(value)) return void fail('must be a number');
        this.size(shape, value, fail, 'value');
        return;
      case 'boolean':
        if (typeof value !== 'boolean') fail('must be a boolean');
        return;
      case 'timestamp':
        // JSON protocols send epoch seconds; an SDK command's input holds a Date.
        if (!((typeof value === 'number' && Number.isFinite(value)) || (value instanceof Date && !Number.isNaN(value.getTime())))) fail('must be a timestamp (epoch seconds)');
        return;
      case 'blob':
        if (!(typeof value === 'string' || value instanceof Uint8Array)) fail('must be a blob (base64)');
        if (typeof value === 'string' && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) fail('must be base64');
        return;
      default:
        throw new Error(`shape ${shapeName} has a type the validator does not know: ${(shape as Shape).type}`);
    }
  }

  /** Coral's words: "Member must have length less than or equal to 2048", "… have value greater than or equal to 1". */
  private size(shape: Shape, n: number, fail: (message: string) => void, what: 'length' | 'value'): void {
    if (shape.min !== undefined && n < shape.min) fail(`Member must have ${what} greater than or equal to ${shape.min}`);
    if (shape.max !== undefined && n > shape.max) fail(`Member must have ${what} less than or equal to ${shape.max}`);
  }

  /** Java (Coral) patterns match the whole value; the model's patterns are also valid JavaScript. */
  private regex(pattern: string): RegExp {
    let re = this.patterns.get(pattern);
    if (!re) {
      re = new RegExp(`^(?:${pattern})$`, 's');
      this.patterns.set(pattern, re);
    }
    return re;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date) && !(value instanceof Uint8Array);
}

function join_(path: string, member: string): string {
  return path ? `${path}.${member}` : member;
}

/** The service's words for constraint failures (Coral's "1 validation error detected: …"). */
export function describeViolations(violations: Violation[]): string {
  const parts = violations.slice(0, 10).map((v) => {
    const shown = v.value === undefined || typeof v.value === 'object' ? '' : `Value '${String(v.value).slice(0, 100)}' at `;
    return `${shown}'${v.path}' failed to satisfy constraint: ${v.message}`;
  });
  const n = violations.length;
  return `${n} validation error${n === 1 ? '' : 's'} detected: ${parts.join('; ')}`;
}
