import { Global, Module } from '@nestjs/common';
import { CONFIG, Config } from '../config/config';
import { createKinesisClient, KINESIS, StreamService } from './kinesis';

@Global()
@Module({
  providers: [{ provide: KINESIS, useFactory: (config: Config) => createKinesisClient(config), inject: [CONFIG] }, StreamService],
  exports: [StreamService],
})
export class StreamModule {}
