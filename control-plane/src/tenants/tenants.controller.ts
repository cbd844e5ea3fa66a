import { Body, Controller, Get, HttpCode, Post, Req } from '@nestjs/common';
import { AuthedRequest, Requires, tenantOf } from './auth';
import { TenantsService } from './tenants.service';

@Controller('v1')
export class TenantsController {
  constructor(private readonly tenants: TenantsService) {}

  @Post('tenants')
  @HttpCode(201)
  @Requires('admin')
  createTenant(@Body() body: unknown) {
    return this.tenants.createTenant(body);
  }

  @Post('environments')
  @HttpCode(201)
  @Requires('tenant')
  createEnvironment(@Req() req: AuthedRequest, @Body() body: unknown) {
    return this.tenants.createEnvironment(tenantOf(req), body);
  }

  @Get('environments')
  @Requires('tenant')
  listEnvironments(@Req() req: AuthedRequest) {
    return this.tenants.listEnvironments(tenantOf(req));
  }
}
