import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { KeyGuard } from './auth';
import { TenantsController } from './tenants.controller';
import { SqliteTenantsRepository, TENANTS_REPOSITORY } from './tenants.repository';
import { TenantsService } from './tenants.service';

@Global()
@Module({
  controllers: [TenantsController],
  providers: [
    TenantsService,
    { provide: TENANTS_REPOSITORY, useClass: SqliteTenantsRepository },
    { provide: APP_GUARD, useClass: KeyGuard },
  ],
  exports: [TenantsService, TENANTS_REPOSITORY],
})
export class TenantsModule {}
