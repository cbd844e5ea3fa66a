import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express, { NextFunction, Request, Response } from 'express';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppModule } from './app.module';
import { Config, loadConfig } from './config/config';
import { newKey } from './common/keys';
import { QuietLogger } from './common/logger';
import { ProblemFilter, sendProblem, toProblem } from './common/problem';
import { isEventPath } from './events/events.controller';
import { StreamService } from './stream/kinesis';

/** The admin key from FLAGSTREAM_ADMIN_KEY, else <data dir>/admin-key, created (mode 0600) on first start. */
export function resolveAdminKey(config: Config, logger: Logger): string {
  if (config.adminKey) return config.adminKey;
  const file = join(config.dataDir, 'admin-key');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(file, newKey('fs-admin') + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    logger.log(`created an admin key in ${file}`);
  } else {
    logger.log(`admin key: ${file}`);
  }
  return readFileSync(file, 'utf8').trim();
}

const JSON_LIMIT = '1mb';

export async function createApp(config: Config): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.with(config), { bodyParser: false, logger: new QuietLogger() });
  const json = express.json({ limit: JSON_LIMIT, type: () => true });
  // Event endpoints read their (maybe gzip, maybe 16 MiB) bodies themselves; every other body is JSON.
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (isEventPath(req.path) || req.method === 'GET' || req.method === 'DELETE') return next();
    if (!req.headers['content-length'] && !req.headers['transfer-encoding']) return next();
    json(req, res, (error?: unknown) => (error ? sendProblem(res, toProblem(error)) : next()));
  });
  app.use('/docs/assets', express.static(require('swagger-ui-dist').getAbsoluteFSPath(), { index: false }));
  app.useGlobalFilters(new ProblemFilter());
  app.disable('x-powered-by');
  app.enableShutdownHooks();
  return app;
}

/** Creates the streams where they are missing, waiting for the emulator to come up. */
async function prepareStreams(app: NestExpressApplication, config: Config, logger: Logger): Promise<void> {
  if (!config.createStreams) return;
  const stream = app.get(StreamService);
  for (let attempt = 1; ; attempt++) {
    try {
      await stream.ensureStream(config.eventsStream, config.streamShards);
      await stream.ensureStream(config.resultsStream, config.resultsShards);
      return;
    } catch (error) {
      if (attempt >= 60) throw error;
      if (attempt === 1) logger.log(`waiting for the stream at ${config.kinesisEndpoint ?? 'AWS'}: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function main() {
  const logger = new Logger('Flagstream');
  const config = loadConfig();
  config.adminKey = resolveAdminKey(config, logger);
  const app = await createApp(config);
  // Streams first: the heartbeats and the results reader start with the application.
  await prepareStreams(app, config, logger);
  await app.init();
  await app.listen(config.port, config.host);
  logger.log(`control plane listening on http://${config.host}:${config.port}`);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`flagstream: ${(error as Error).message}`);
    process.exit(1);
  });
}
