import { Controller, Get, Inject, Param, ParseUUIDPipe, Req } from '@nestjs/common';
import { Problem } from '../common/problem';
import { ANALYSES_REPOSITORY, AnalysesRepository } from '../analyses/analyses.repository';
import { AuthedRequest, Requires, tenantOf } from '../tenants/auth';
import { HEALTH_HISTORY, HealthHistory } from './health-history.repository';

const AnalysisId = new ParseUUIDPipe({ exceptionFactory: () => Problem.notFound('The analysis') });

/** What the health checks observed and did for one analysis (CONTRACT §6). */
@Controller('v1/analyses')
@Requires('tenant')
export class AnalysisHealthController {
  constructor(
    @Inject(ANALYSES_REPOSITORY) private readonly analyses: AnalysesRepository,
    @Inject(HEALTH_HISTORY) private readonly history: HealthHistory,
  ) {}

  @Get(':id/health')
  health(@Req() req: AuthedRequest, @Param('id', AnalysisId) id: string) {
    const analysis = this.analyses.find(tenantOf(req).id, id);
    if (!analysis) throw Problem.notFound(`Analysis ${id}`);
    return { status: analysis.status, history: this.history.list(id, 100) };
  }
}
