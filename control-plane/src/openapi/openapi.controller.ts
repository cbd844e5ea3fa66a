import { Controller, Get, Header, Inject } from '@nestjs/common';
import { CONFIG, Config } from '../config/config';
import { buildOpenApi } from './openapi';

@Controller()
export class OpenApiController {
  private readonly document: Record<string, unknown>;

  constructor(@Inject(CONFIG) config: Config) {
    this.document = buildOpenApi(`http://${config.host}:${config.port}`);
  }

  @Get('openapi.json')
  openapi() {
    return this.document;
  }

  /** Swagger UI from the swagger-ui-dist package (served under /docs/assets), no CDN. */
  @Get('docs')
  @Header('Content-Type', 'text/html; charset=utf-8')
  docs(): string {
    return `<!doctype html><html><head><meta charset="utf-8"><title>Flagstream API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: '/openapi.json', dom_id: '#ui' });</script></body></html>`;
  }
}
