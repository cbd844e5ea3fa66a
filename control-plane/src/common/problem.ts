import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';

export interface FieldError {
  path: string;
  message: string;
}

/** An RFC 9457 problem; every 4xx/5xx body has this shape. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  static invalid(errors: FieldError[], detail = 'The request is invalid.'): Problem {
    return new Problem(400, 'Bad Request', detail, errors);
  }
  static notFound(what: string): Problem {
    return new Problem(404, 'Not Found', `${what} was not found.`);
  }
  static conflict(detail: string): Problem {
    return new Problem(409, 'Conflict', detail);
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Content Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
};

export function sendProblem(res: Response, problem: Problem): void {
  const body: Record<string, unknown> = { type: 'about:blank', status: problem.status, title: problem.title, detail: problem.detail };
  if (problem.errors) body.errors = problem.errors;
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(body));
}

/** Turns every error into application/problem+json, and never leaks a stack trace. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(error: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    sendProblem(res, toProblem(error, this.logger));
  }
}

export function toProblem(error: unknown, logger?: Logger): Problem {
  if (error instanceof Problem) return error;
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const response = error.getResponse();
    const message = typeof response === 'string' ? response : (response as { message?: unknown }).message;
    return new Problem(status, TITLES[status] ?? 'Error', typeof message === 'string' ? message : error.message);
  }
  // body-parser errors carry a status (400 bad JSON, 413 too large) and a type.
  const bodyError = error as { status?: number; type?: string; message?: string };
  if (typeof bodyError?.status === 'number' && bodyError.status >= 400 && bodyError.status < 500) {
    const detail = bodyError.type === 'entity.too.large' ? 'The request body is over the limit.' : 'The request body is not valid JSON.';
    return new Problem(bodyError.status, TITLES[bodyError.status] ?? 'Bad Request', detail);
  }
  logger?.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return new Problem(500, 'Internal Server Error', 'An unexpected error occurred; it has been logged.');
}
