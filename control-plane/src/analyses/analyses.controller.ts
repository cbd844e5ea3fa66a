import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, Put, Req } from '@nestjs/common';
import { Problem } from '../common/problem';
import { AuthedRequest, Requires, tenantOf } from '../tenants/auth';
import { AnalysesService } from './analyses.service';

/** Analysis IDs are UUIDs; anything else is simply not found. */
const AnalysisId = new ParseUUIDPipe({ exceptionFactory: () => Problem.notFound('The analysis') });

@Controller('v1/analyses')
@Requires('tenant')
export class AnalysesController {
  constructor(private readonly analyses: AnalysesService) {}

  @Post()
  @HttpCode(201)
  create(@Req() req: AuthedRequest, @Body() body: unknown) {
    return this.analyses.create(tenantOf(req), body);
  }

  @Post('validate')
  @HttpCode(200)
  async validate(@Req() req: AuthedRequest, @Body() body: unknown) {
    const { sql } = await this.analyses.validate(tenantOf(req), body);
    return { valid: true, sql };
  }

  @Get()
  list(@Req() req: AuthedRequest) {
    return this.analyses.list(tenantOf(req));
  }

  @Get(':id')
  get(@Req() req: AuthedRequest, @Param('id', AnalysisId) id: string) {
    return this.analyses.get(tenantOf(req), id);
  }

  @Get(':id/sql')
  sql(@Req() req: AuthedRequest, @Param('id', AnalysisId) id: string) {
    return this.analyses.sql(tenantOf(req), id);
  }

  @Put(':id')
  update(@Req() req: AuthedRequest, @Param('id', AnalysisId) id: string, @Body() body: unknown) {
    return this.analyses.update(tenantOf(req), id, body);
  }

  @Post(':id/stop')
  @HttpCode(200)
  stop(@Req() req: AuthedRequest, @Param('id', AnalysisId) id: string) {
    return this.analyses.stop(tenantOf(req), id);
  }

  @Post(':id/start')
  @HttpCode(200)
  start(@Req() req: AuthedRequest, @Param('id', AnalysisId) id: string) {
    return this.analyses.start(tenantOf(req), id);
  }

  @Post(':id/replay')
  @HttpCode(200)
  replay(@Req() req: AuthedRequest, @Param('id', AnalysisId) id: string, @Body() body: unknown) {
    return this.analyses.replay(tenantOf(req), id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Req() req: AuthedRequest, @Param('id', AnalysisId) id: string) {
    await this.analyses.delete(tenantOf(req), id);
  }
}
