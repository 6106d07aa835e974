/** Shared patterns for asserting API responses. */
export const API = '/api/v1';
/** Timestamps are ISO-8601 UTC with milliseconds and `Z`. */
export const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** Lowercase, hyphenated. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A well-formed id that no row has. */
export const MISSING_ID = '00000000-0000-4000-8000-000000000000';
export const REQUEST_ID = expect.any(String) as unknown;
