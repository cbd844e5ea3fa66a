// `npm test`: bootstrap what is missing, type-check, then run every test; the
// end-to-end tests start (and stop) the real local stack themselves.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { bootstrap, ROOT, run } from './bootstrap.mjs';

try {
  await bootstrap();
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  await run(process.execPath, [tsc, '-p', 'control-plane/tsconfig.json', '--noEmit'], { label: 'type-check control plane', quiet: true });
  await run(process.execPath, [tsc, '-p', 'test/tsconfig.json'], { label: 'type-check tests', quiet: true });
  await run(process.execPath, [join(ROOT, 'schemas/generate-types.mjs'), '--check'], { label: 'schema types are current', quiet: true });
  await run('mvn', ['-B', '-q', '-ntp', '-f', 'flink-sql/pom.xml', 'test'], { label: 'Java tests (flink-sql)', quiet: true });
} catch (error) {
  console.error(`[test] ${error.message}`);
  process.exit(1);
}
// Tests run one file at a time: the end-to-end ones share one stack on a 2-core machine.
const jest = spawnSync(process.execPath, [join(ROOT, 'node_modules/jest/bin/jest.js'), '--runInBand', ...process.argv.slice(2)], { cwd: ROOT, stdio: 'inherit' });
process.exit(jest.status ?? 1);
