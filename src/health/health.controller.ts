import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { OkResponse } from '../common/dto/ok-response.dto';

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  @Get(['health', 'healthz'])
  @ApiOkResponse({ type: OkResponse, description: 'The process is up' })
  live(): OkResponse {
    return { ok: true };
  }

  @Get('readyz')
  @ApiOkResponse({ type: OkResponse, description: 'The database answers' })
  @ApiServiceUnavailableResponse({ description: 'The database does not answer' })
  async ready(@Res({ passthrough: true }) res: Response): Promise<OkResponse | { ok: false }> {
    try {
      await this.dataSource.query('SELECT 1');
      return { ok: true };
    } catch {
      res.status(HttpStatus.SERVICE_UNAVAILABLE);
      return { ok: false };
    }
  }
}
