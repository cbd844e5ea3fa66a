import { Controller, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { CONFIG, Config } from '../config/config';
import { AuthedRequest, environmentOf, Requires } from '../tenants/auth';
import { EventsService } from './events.service';
import { readRawBody } from './raw-body';

/**
 * The time (epoch ms) the API stamped an accepted payload's events with: the time its
 * receive-time rules (late, clock ahead) were judged at. A retry answers the first try's.
 */
export const RECEIVED_AT_HEADER = 'X-Flagstream-Received-At';

/** The paths LaunchDarkly SDKs post to; their bodies are read raw (gzip, large). */
export const EVENT_PATHS = ['/bulk', '/v1/events/bulk', '/diagnostic'];

/**
 * Whether a request path is one of EVENT_PATHS as Express routes it: case-insensitive
 * and with an optional trailing slash (`/BULK`, `/bulk/`, `/V1/Events/Bulk`). The raw-body
 * exemption must match exactly the requests these routes answer: a body parsed as JSON
 * before the handler reads it raw would leave the request without an answer.
 */
export function isEventPath(path: string): boolean {
  const normalized = path.toLowerCase();
  return EVENT_PATHS.some((p) => normalized === p || normalized === `${p}/`);
}

@Controller()
export class EventsController {
  constructor(private readonly events: EventsService, @Inject(CONFIG) private readonly config: Config) {}

  @Post(['bulk', 'v1/events/bulk'])
  @HttpCode(202)
  @Requires('sdk')
  async bulk(@Req() req: AuthedRequest, @Res({ passthrough: true }) res: Response) {
    const environment = environmentOf(req);
    const body = this.events.decode(await readRawBody(req, this.config.maxBodyBytes), header(req, 'content-encoding'));
    const { response, receivedAt } = await this.events.ingest(environment, environment.tenantKey, body, header(req, 'x-launchdarkly-payload-id'));
    res.setHeader(RECEIVED_AT_HEADER, String(receivedAt));
    return response;
  }

  /** SDK diagnostics are acknowledged so SDKs stay quiet; they are not analysed (yet). */
  @Post('diagnostic')
  @HttpCode(202)
  @Requires('sdk')
  async diagnostic(@Req() req: AuthedRequest) {
    this.events.decode(await readRawBody(req, this.config.maxBodyBytes), header(req, 'content-encoding'));
    return {};
  }
}

function header(req: AuthedRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
