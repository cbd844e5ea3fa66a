// `npm start`: bootstrap what is missing, start the local stack, print `ready`.
import { join, resolve } from 'node:path';
import { bootstrap, ROOT } from './bootstrap.mjs';
import { DEFAULT_PORTS, startStack } from './local-stack.mjs';

const started = Date.now();
const dataDir = process.env.FLAGSTREAM_DATA_DIR ? resolve(process.env.FLAGSTREAM_DATA_DIR) : join(ROOT, '.flagstream');
const port = Number(process.env.PORT || DEFAULT_PORTS.api);
let stack;
let stopping = false;

async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`flagstream: ${signal}, stopping every process`);
  await stack?.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

try {
  // The API model is needed only by the managed-flink stand-in.
  await bootstrap({ serviceModels: process.env.FLAGSTREAM_TARGET === 'managed-flink' ? 'required' : 'optional' });
  stack = await startStack({
    dataDir,
    ports: {
      ...DEFAULT_PORTS,
      api: port,
      ...(process.env.FLAGSTREAM_KINESIS_PORT ? { kinesis: Number(process.env.FLAGSTREAM_KINESIS_PORT) } : {}),
      ...(process.env.FLAGSTREAM_FLINK_PORT ? { flink: Number(process.env.FLAGSTREAM_FLINK_PORT) } : {}),
      ...(process.env.FLAGSTREAM_VALIDATOR_PORT ? { validator: Number(process.env.FLAGSTREAM_VALIDATOR_PORT) } : {}),
      ...(process.env.FLAGSTREAM_MANAGED_FLINK_PORT ? { managedFlink: Number(process.env.FLAGSTREAM_MANAGED_FLINK_PORT) } : {}),
    },
    echo: ['control-plane'],
    log: (line) => console.log(`flagstream: ${line}`),
  });
  const host = process.env.HOST || '127.0.0.1';
  const key = process.env.FLAGSTREAM_ADMIN_KEY ? 'from FLAGSTREAM_ADMIN_KEY' : `in ${join(dataDir, 'admin-key')}`;
  console.log(`flagstream: logs of the emulator, Flink${stack.managedFlinkUrl ? ', the Managed Flink stand-in' : ''} and the control plane are in ${join(dataDir, 'logs')}`);
  console.log(`flagstream: ready on http://${host}:${port} in ${Math.round((Date.now() - started) / 1000)} s (admin key ${key}; Ctrl-C stops)`);
  if (stopping) await stack.stop();
} catch (error) {
  console.error(`flagstream: ${error.message}`);
  await stack?.stop();
  process.exit(1);
}
