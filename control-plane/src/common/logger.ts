import { ConsoleLogger } from '@nestjs/common';

/** Nest's logger without its start-up chatter (every module and route), which buries what matters. */
export class QuietLogger extends ConsoleLogger {
  private static readonly NOISY = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestFactory', 'NestApplication']);

  override log(message: unknown, context?: string): void {
    if (context && QuietLogger.NOISY.has(context)) return;
    super.log(message, context);
  }
}
