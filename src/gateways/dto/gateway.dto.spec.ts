import { ArgumentMetadata } from '@nestjs/common';
import { RequestValidationError } from '../../common/errors/app-error';
import { RequestValidationPipe } from '../../common/validation/request-validation.pipe';
import { GatewayCreate, GatewayUpdate } from './gateway.dto';

const meta = (metatype: ArgumentMetadata['metatype']): ArgumentMetadata => ({
  type: 'body',
  metatype,
});
const pipe = new RequestValidationPipe();

async function locsOf(value: unknown, metatype: ArgumentMetadata['metatype']) {
  try {
    await pipe.transform(value, meta(metatype));
  } catch (error) {
    if (error instanceof RequestValidationError) return error.issues.map((issue) => issue.loc);
    throw error;
  }
  return [];
}

describe('gateway DTOs', () => {
  const valid = { name: 'Edge', url: 'wss://gw.example.com:18789', workspace_root: '~/.openclaw' };

  it('accepts the connection flags and trims a token, blank meaning none', async () => {
    await expect(
      pipe.transform(
        { ...valid, token: '  tok  ', disable_device_pairing: true, allow_insecure_tls: null },
        meta(GatewayCreate),
      ),
    ).resolves.toEqual({
      ...valid,
      token: 'tok',
      disable_device_pairing: true,
      allow_insecure_tls: null,
    });
    await expect(
      pipe.transform({ ...valid, token: '   ' }, meta(GatewayCreate)),
    ).resolves.toMatchObject({ token: null });
  });

  it('takes a ws:// / wss:// URL, nothing else (upstream accepted an empty one)', async () => {
    expect(await locsOf({ ...valid, url: 'ws://127.0.0.1:18789' }, GatewayCreate)).toEqual([]);
    for (const url of ['', '   ', 'http://gw.example.com', 'gw.example.com', 'wss://', 42]) {
      expect(await locsOf({ ...valid, url }, GatewayCreate)).toEqual([['body', 'url']]);
    }
  });

  it('requires name, url and workspace_root on create and refuses non-boolean flags', async () => {
    expect(await locsOf({ disable_device_pairing: 'yes' }, GatewayCreate)).toEqual(
      expect.arrayContaining([
        ['body', 'name'],
        ['body', 'url'],
        ['body', 'workspace_root'],
        ['body', 'disable_device_pairing'],
      ]),
    );
  });

  it('refuses a blank name or workspace_root and trims them (upstream accepted "")', async () => {
    expect(await locsOf({ ...valid, name: ' ', workspace_root: '' }, GatewayCreate)).toEqual([
      ['body', 'name'],
      ['body', 'workspace_root'],
    ]);
    expect(await locsOf({ name: '', url: ' ', workspace_root: '\t' }, GatewayUpdate)).toEqual([
      ['body', 'name'],
      ['body', 'url'],
      ['body', 'workspace_root'],
    ]);
    await expect(
      pipe.transform({ ...valid, name: '  Edge  ' }, meta(GatewayCreate)),
    ).resolves.toMatchObject({ name: 'Edge' });
  });

  it('applies only what an update sends, and refuses null for NOT NULL fields', async () => {
    await expect(
      pipe.transform({ allow_insecure_tls: true }, meta(GatewayUpdate)),
    ).resolves.toEqual({ allow_insecure_tls: true });
    expect(await locsOf({ name: null, url: null, workspace_root: null }, GatewayUpdate)).toEqual([
      ['body', 'name'],
      ['body', 'url'],
      ['body', 'workspace_root'],
    ]);
  });
});
