import { DynamicModule, Global, Logger, Module } from '@nestjs/common';
import { installGatewayTokenKey } from '../common/secrets/gateway-token';
import { APP_CONFIG, AppConfig } from './app-config';

/** Marker provider: instantiating it installs the gateway-token key (SECRETS_KEY). */
export const SECRETS_KEY_INSTALLED = Symbol('SECRETS_KEY_INSTALLED');

/** Provides the validated {@link AppConfig} everywhere under the APP_CONFIG token. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        {
          provide: SECRETS_KEY_INSTALLED,
          useFactory: () => {
            installGatewayTokenKey(config.secrets.key);
            if (config.secrets.ephemeral) {
              new Logger('Config').warn(
                'SECRETS_KEY is not set: gateway tokens saved by this process are encrypted ' +
                  'with a random key and will not decrypt after a restart. Set SECRETS_KEY ' +
                  '(64 hex characters) to keep them.',
              );
            }
            return true;
          },
        },
      ],
      exports: [APP_CONFIG],
    };
  }
}
