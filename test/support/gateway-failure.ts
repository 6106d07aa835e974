import { GatewayError } from '../../src/common/errors/gateway-errors';

/** The GatewayError `promise` rejects with; fails the test on success or any other error. */
export async function failureOf(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}
