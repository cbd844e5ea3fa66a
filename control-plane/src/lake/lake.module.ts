import { Module } from '@nestjs/common';
import { StreamModule } from '../stream/stream.module';
import { LakeFiles } from './lake-files';
import { LakeWriter } from './lake-writer.service';

/** The local data lake (CONTRACT §9): the writer that fills it from the events stream, and its read side. */
@Module({
  imports: [StreamModule],
  providers: [LakeWriter, LakeFiles],
  exports: [LakeFiles],
})
export class LakeModule {}
