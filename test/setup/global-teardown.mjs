import { rmSync } from 'node:fs';

export default async function globalTeardown() {
  const stack = globalThis.__flagstreamStack;
  if (!stack) return;
  await stack.stop();
  if (!process.env.FLAGSTREAM_KEEP_TEST_DATA) rmSync(stack.dataDir, { recursive: true, force: true });
  else console.log(`[e2e] test data kept in ${stack.dataDir}`);
}
