import { Controller, Get, Param, ParseUUIDPipe, Query, Req } from '@nestjs/common';
import { FieldError, Problem } from '../common/problem';
import { AuthedRequest, Requires, tenantOf } from '../tenants/auth';
import { ResultsService } from './results.service';

const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;

@Controller('v1/analyses')
@Requires('tenant')
export class ResultsController {
  constructor(private readonly results: ResultsService) {}

  /**
   * Windowed kinds: rows ordered by windowStart; `from` (inclusive) and `to` (exclusive) bound windowStart. Each row carries
   * `final` (its window has closed) and `updatedAt` when late events changed it after that (CONTRACT §6).
   * Kept-current kinds (flag-usage, experiment, guardrail): their rows as of now; `from`/`to` do not apply.
   */
  @Get(':id/results')
  list(
    @Req() req: AuthedRequest,
    @Param('id', new ParseUUIDPipe({ exceptionFactory: () => Problem.notFound('The analysis') })) id: string,
    @Query() query: Record<string, unknown>,
  ) {
    const errors: FieldError[] = [];
    const from = time(query.from, 'from', errors);
    const to = time(query.to, 'to', errors);
    let limit = DEFAULT_LIMIT;
    if (query.limit !== undefined) {
      limit = Number(query.limit);
      if (typeof query.limit !== 'string' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
        errors.push({ path: '/query/limit', message: `must be an integer from 1 to ${MAX_LIMIT}` });
      }
    }
    if (errors.length) throw Problem.invalid(errors);
    return { rows: this.results.rows(tenantOf(req).id, id, { from, to, limit }) };
  }
}

function time(value: unknown, name: string, errors: FieldError[]): string | undefined {
  if (value === undefined) return undefined;
  const date = typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) {
    errors.push({ path: `/query/${name}`, message: 'must be an ISO-8601 time' });
    return undefined;
  }
  return date.toISOString();
}
