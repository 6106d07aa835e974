/**
 * Turns a gateway's error response into a member of the GatewayError family. Handshake
 * failures (auth, pairing, protocol) get their own classes so callers and operators can tell
 * "fix the token" from "approve the device" from "upgrade something"; method failures keep the
 * gateway's own code, message, details and retry hints.
 */
import {
  GatewayAuthError,
  GatewayError,
  GatewayPairingRequiredError,
  GatewayProtocolError,
  GatewayRpcError,
} from '../common/errors/gateway-errors';
import { GatewayWireCode, type WireError } from './protocol';

/** `details.code` values the gateway attaches to handshake and scope failures. */
const TOKEN_CODES = new Set([
  'AUTH_TOKEN_MISMATCH',
  'AUTH_TOKEN_MISSING',
  'AUTH_PASSWORD_MISMATCH',
  'AUTH_PASSWORD_MISSING',
  'AUTH_UNAUTHORIZED',
  'AUTH_DEVICE_TOKEN_MISMATCH',
]);
const PAIRING_CODES = new Set(['PAIRING_REQUIRED', 'DEVICE_PAIRING_REQUIRED', 'NOT_PAIRED']);

export interface PairingContext {
  deviceId: string | null;
}

function detailString(error: WireError, key: string): string | undefined {
  const value = error.details?.[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The error for a failed `connect`. */
export function handshakeError(error: WireError, pairing: PairingContext): GatewayError {
  const detailCode = detailString(error, 'code') ?? '';
  if (detailCode === 'PROTOCOL_MISMATCH' || /protocol mismatch/i.test(error.message)) {
    const expected = error.details?.expectedProtocol;
    const expectedText =
      typeof expected === 'number' || typeof expected === 'string' ? String(expected) : 'unknown';
    return new GatewayProtocolError(
      `gateway protocol mismatch: the gateway expects protocol ${expectedText}, ` +
        `this client speaks 3..4 (${error.message})`,
    );
  }
  if (error.code === GatewayWireCode.Unavailable) {
    return rpcError('connect', error);
  }
  if (
    PAIRING_CODES.has(detailCode) ||
    (error.code === GatewayWireCode.NotPaired && detailCode !== 'DEVICE_IDENTITY_REQUIRED')
  ) {
    const requestId = detailString(error, 'requestId');
    const device = pairing.deviceId ? ` (device ${pairing.deviceId})` : '';
    const approve = requestId
      ? `approve request ${requestId} on the gateway (\`openclaw devices approve ${requestId}\` on the gateway host, or device.pair.approve from an admin client)`
      : 'approve it on the gateway (`openclaw devices list`, then `openclaw devices approve <request id>` on the gateway host)';
    return new GatewayPairingRequiredError(
      `pairing required: the gateway holds a pairing request for this Mission Control installation${device}; ` +
        `${approve}, then retry (${error.message})`,
    );
  }
  if (detailCode === 'DEVICE_IDENTITY_REQUIRED') {
    return new GatewayAuthError(
      'unauthorized',
      `gateway requires a device identity for this connection; clear disable_device_pairing for this gateway (${error.message})`,
    );
  }
  if (TOKEN_CODES.has(detailCode) || /token mismatch|unauthorized/i.test(error.message)) {
    return new GatewayAuthError(
      'token_mismatch',
      `gateway rejected the token: ${error.message}; update the gateway token in Mission Control`,
    );
  }
  if (detailCode.startsWith('DEVICE_AUTH_') || detailCode.startsWith('CONTROL_UI_')) {
    return new GatewayAuthError('unauthorized', `gateway refused the connection: ${error.message}`);
  }
  return rpcError('connect', error);
}

/** The error for a failed method call on an open connection. */
export function methodError(method: string, error: WireError): GatewayError {
  if (detailString(error, 'code') === 'MISSING_SCOPE') {
    const scope = detailString(error, 'missingScope');
    return new GatewayAuthError(
      'missing_scope',
      `gateway denied ${method}: ${error.message}${scope ? ` (the connection lacks ${scope})` : ''}`,
    );
  }
  return rpcError(method, error);
}

function rpcError(method: string, error: WireError): GatewayRpcError {
  const retryable = error.retryable ?? error.code === GatewayWireCode.Unavailable;
  return new GatewayRpcError(method, error.code, error.message, error.details, {
    retryable,
    retryAfterMs: error.retryAfterMs,
  });
}

/** How long the gateway asked us to wait before retrying, if it did. */
export function retryAfterOf(error: unknown): number | null {
  if (error instanceof GatewayRpcError && error.gatewayCode === GatewayWireCode.Unavailable) {
    return error.retryAfterMs ?? null;
  }
  return null;
}
