/**
 * Upper bounds for client input. Upstream declares no lengths for these fields, so the bounds are
 * ours: generous for real use, and small enough that any value fits a btree index row (2704 bytes,
 * i.e. at most 676 four-byte characters) and no request can make the server do unbounded work.
 */
export const MAX_LENGTH = {
  /** Organization, board, user and agent names; board slugs. */
  name: 200,
  email: 320,
  /** Member and invite roles, board types, agent statuses. */
  keyword: 64,
  /** Short free text: pronouns, time zones, goal sources. */
  shortText: 200,
  /** Invite tokens (we issue 32 characters) and gateway tokens. */
  token: 512,
  /** Gateway URLs and workspace roots. */
  url: 2048,
  /** Long free text: objectives, notes, context. */
  longText: 20_000,
} as const;

/** Per-board grants in one member access update or invite. */
export const MAX_BOARD_ACCESS_ITEMS = 1000;

/** Free JSON objects (e.g. `success_metrics`): serialized size and nesting depth. */
export const MAX_FREE_JSON_BYTES = 16 * 1024;
export const MAX_FREE_JSON_DEPTH = 8;

/**
 * Edge-wide bounds checked on every parsed body and query before any handler, validator or
 * transformer walks it (see `unsafe-input.middleware.ts`): DTO bounds are tighter where they exist.
 */
export const MAX_INPUT_DEPTH = 32;
export const MAX_INPUT_ARRAY_ITEMS = 10_000;
