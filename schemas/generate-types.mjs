// Generates src/generated/types.ts from the JSON Schemas, so TypeScript types never drift from them.
// `npm run build --workspace schemas` runs it; a test checks the committed file is current.
import { compileFromFile } from 'json-schema-to-typescript';
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const files = [
  'events/context.schema.json',
  'events/sdk-event.schema.json',
  'tenants/keys.schema.json',
  'analyses/analysis-definition.schema.json',
  'analyses/flag-evaluations.params.schema.json',
  'analyses/flag-evaluations.row.schema.json',
  'analyses/unique-contexts.params.schema.json',
  'analyses/unique-contexts.row.schema.json',
  'analyses/flag-usage.params.schema.json',
  'analyses/flag-usage.row.schema.json',
  'analyses/experiment.params.schema.json',
  'analyses/experiment.row.schema.json',
  'analyses/guardrail.params.schema.json',
  'analyses/guardrail.row.schema.json',
  'analyses/custom-sql.params.schema.json',
];

export async function generate() {
  const seen = new Set();
  const parts = ['/* Generated from the JSON Schemas in schemas/ by generate-types.mjs. Do not edit. */\n'];
  for (const file of files) {
    const ts = await compileFromFile(join(root, file), {
      cwd: dirname(join(root, file)),
      bannerComment: '',
      additionalProperties: false,
      declareExternallyReferenced: true,
      unreachableDefinitions: true,
      // Plain arrays: min/max items stay runtime checks (Ajv), not tuple types.
      ignoreMinAndMaxItems: true,
      style: { singleQuote: true },
    });
    // Each file re-declares what it references; keep the first declaration of each name.
    for (const block of ts.split(/\n(?=export )/)) {
      const name = /^export (?:interface|type) (\w+)/.exec(block.trim())?.[1];
      if (!name || seen.has(name)) continue;
      seen.add(name);
      parts.push(block.trim() + '\n');
    }
  }
  return parts.join('\n');
}

const out = join(root, 'src/generated/types.ts');
const text = await generate();
if (process.argv.includes('--check')) {
  const current = readFileSync(out, 'utf8');
  if (current !== text) {
    console.error('schemas/src/generated/types.ts is out of date: run npm run generate --workspace schemas');
    process.exit(1);
  }
} else {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
}
