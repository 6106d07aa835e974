import { ArgumentMetadata } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsDefined, IsInt, IsOptional, IsString, Max, Min, ValidateNested } from 'class-validator';
import { RequestValidationError } from './errors/app-error';
import {
  GatewayAuthError,
  GatewayOperationError,
  GatewayRpcError,
  GatewayTimeoutError,
  ProvisioningError,
} from './errors/gateway-errors';
import { gatewayErrorResponse } from './filters/gateway-exception.filter';
import { PageQuery } from './pagination/pagination';
import { NonEmptyString } from './validation/decorators';
import { normalizeUuid, ParseUuidPipe } from './validation/parse-uuid.pipe';
import { RequestValidationPipe } from './validation/request-validation.pipe';

class Child {
  @IsDefined() @IsInt() @Min(0) @Max(5) level!: number;
}

class Parent {
  @NonEmptyString() title!: string;
  @IsOptional() @IsString() note?: string | null;
  @IsDefined() @ValidateNested({ each: true }) @Type(() => Child) children!: Child[];
}

const body = (metatype: ArgumentMetadata['metatype']): ArgumentMetadata => ({
  type: 'body',
  metatype,
});

async function issuesOf(value: unknown, meta: ArgumentMetadata) {
  try {
    await new RequestValidationPipe().transform(value, meta);
  } catch (error) {
    if (error instanceof RequestValidationError) return error.issues;
    throw error;
  }
  return [];
}

describe('RequestValidationPipe', () => {
  it('returns a typed instance with unknown keys stripped and strings trimmed', async () => {
    const result = await new RequestValidationPipe().transform(
      { title: '  hi ', children: [{ level: 2, x: 1 }], extra: 1 },
      body(Parent),
    );
    expect(result).toBeInstanceOf(Parent);
    expect(result).toEqual({ title: 'hi', children: [{ level: 2 }] });
  });

  it('reports the missing field, blank strings and nested positions', async () => {
    expect(await issuesOf({ title: '   ', children: [{ level: 9 }, {}] }, body(Parent))).toEqual([
      expect.objectContaining({ type: 'string_too_short', loc: ['body', 'title'] }),
      expect.objectContaining({
        type: 'less_than_equal',
        loc: ['body', 'children', 0, 'level'],
        input: 9,
      }),
      expect.objectContaining({ type: 'missing', loc: ['body', 'children', 1, 'level'] }),
    ]);
  });

  it('validates query objects with conversion and defaults', async () => {
    const meta: ArgumentMetadata = { type: 'query', metatype: PageQuery };
    expect(await new RequestValidationPipe().transform({}, meta)).toEqual({
      limit: 200,
      offset: 0,
    });
    expect(await new RequestValidationPipe().transform({ limit: '5', offset: '10' }, meta)).toEqual(
      {
        limit: 5,
        offset: 10,
      },
    );
    expect(await issuesOf({ limit: '0' }, meta)).toEqual([
      expect.objectContaining({ type: 'greater_than_equal', loc: ['query', 'limit'] }),
    ]);
    expect(await issuesOf({ limit: '201', offset: '-1' }, meta)).toEqual([
      expect.objectContaining({ type: 'less_than_equal', loc: ['query', 'limit'] }),
      expect.objectContaining({ type: 'greater_than_equal', loc: ['query', 'offset'] }),
    ]);
    expect(await issuesOf({ limit: 'ten' }, meta)).toEqual([
      expect.objectContaining({ type: 'int_type', loc: ['query', 'limit'] }),
    ]);
  });

  it('leaves primitives and custom params alone', async () => {
    const pipe = new RequestValidationPipe();
    expect(await pipe.transform('x', { type: 'param', metatype: String, data: 'id' })).toBe('x');
    expect(await pipe.transform({ a: 1 }, { type: 'custom', metatype: Parent })).toEqual({ a: 1 });
  });
});

describe('UUID parameters', () => {
  it('normalise case and hyphens, or reject', () => {
    expect(normalizeUuid('4F1C2D3E4A5B4C6D8E9F0A1B2C3D4E5F')).toBe(
      '4f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f',
    );
    expect(normalizeUuid('not-a-uuid')).toBeNull();
    expect(normalizeUuid(42)).toBeNull();
  });

  it('are a 422 issue located in the path', () => {
    expect(() =>
      new ParseUuidPipe().transform('nope', { type: 'param', data: 'member_id' }),
    ).toThrow(RequestValidationError);
    try {
      new ParseUuidPipe().transform('nope', { type: 'param', data: 'member_id' });
    } catch (error) {
      expect((error as RequestValidationError).issues).toEqual([
        {
          type: 'uuid_parsing',
          loc: ['path', 'member_id'],
          msg: 'Input should be a valid UUID',
          input: 'nope',
        },
      ]);
    }
  });
});

describe('gateway error mapping', () => {
  it('names the operation in a 502', () => {
    const error = new GatewayOperationError(
      'askUser',
      new GatewayTimeoutError('timed out after 30s'),
    );
    expect(gatewayErrorResponse(error)).toEqual({
      status: 502,
      detail: 'Gateway ask-user dispatch failed: timed out after 30s',
    });
  });

  it('passes a bare gateway error text through as a 502', () => {
    expect(
      gatewayErrorResponse(
        new GatewayRpcError('agents.files.get', 'INVALID_REQUEST', 'unsupported file'),
      ),
    ).toEqual({
      status: 502,
      detail: 'unsupported file',
    });
    expect(
      gatewayErrorResponse(new GatewayAuthError('token_mismatch', 'gateway token mismatch')).status,
    ).toBe(502);
  });

  it('keeps provisioning causes out of the 500 detail', () => {
    expect(gatewayErrorResponse(new ProvisioningError('provision', new Error('boom')))).toEqual({
      status: 500,
      detail: 'Unexpected error provisioning agent provisioning.',
    });
  });
});
