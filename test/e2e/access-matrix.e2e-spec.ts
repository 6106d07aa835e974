/**
 * Who may call what: every board route and the main organization routes, for each kind of
 * caller. One organization ("org A") holds the boards; the callers differ by role, all-boards
 * flags and per-board rows, plus a member of another organization and an anonymous caller.
 */
import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { Board } from '../../src/boards/entities/board.entity';
import {
  buildBoard,
  buildGateway,
  buildOrganization,
  grantBoard,
  signIn,
  SignedInUser,
  signInMember,
} from '../support/builders';
import { createTestApp, TestApp } from '../support/test-app';

const CALLERS = [
  'owner',
  'admin',
  'allBoardsReader',
  'oneBoardReader',
  'oneBoardWriter',
  'otherOrgMember',
  'anonymous',
] as const;
type Caller = (typeof CALLERS)[number];

/** A status, or a status with the exact `detail` text. */
type Expected = number | [number, string];

const UNAUTHORIZED: Expected = [401, 'Unauthorized'];
const FORBIDDEN: Expected = [403, 'Forbidden'];
const NO_ORG_ACCESS: Expected = [403, 'No org access'];
const BOARD_DENIED: Expected = [403, 'Board access denied'];
const NOT_FOUND: Expected = [404, 'Not Found'];

interface World {
  orgA: string;
  gatewayA: string;
  /** The board every one-board grant points at. */
  boardX: Board;
  /** A second board of org A nobody has a row for. */
  boardY: Board;
  users: Partial<Record<Caller, SignedInUser>>;
  /** A new board of org A, with the one-board callers' rows on it (for destructive routes). */
  freshBoard(): Promise<Board>;
}

interface Call {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  body?: object;
}

type Route = (w: World) => Call | Promise<Call>;

const ROUTES: Record<string, Route> = {
  'GET /boards': () => ({ method: 'get', path: '/api/v1/boards' }),
  'POST /boards': (w) => ({
    method: 'post',
    path: '/api/v1/boards',
    body: { name: 'matrix', slug: 'matrix', gateway_id: w.gatewayA },
  }),
  'GET /boards/:id': (w) => ({ method: 'get', path: `/api/v1/boards/${w.boardX.id}` }),
  'GET /boards/:id (unreadable board)': (w) => ({
    method: 'get',
    path: `/api/v1/boards/${w.boardY.id}`,
  }),
  'GET /boards/:id (missing)': () => ({
    method: 'get',
    path: `/api/v1/boards/${randomUUID()}`,
  }),
  'PATCH /boards/:id': (w) => ({
    method: 'patch',
    path: `/api/v1/boards/${w.boardX.id}`,
    body: { objective: `edited ${randomUUID()}` },
  }),
  'DELETE /boards/:id': async (w) => ({
    method: 'delete',
    path: `/api/v1/boards/${(await w.freshBoard()).id}`,
  }),
  'GET /organizations/me': () => ({ method: 'get', path: '/api/v1/organizations/me' }),
  'GET /organizations/me/members': () => ({
    method: 'get',
    path: '/api/v1/organizations/me/members',
  }),
  'GET /organizations/me/invites': () => ({
    method: 'get',
    path: '/api/v1/organizations/me/invites',
  }),
  'POST /organizations/me/invites': () => ({
    method: 'post',
    path: '/api/v1/organizations/me/invites',
    body: { invited_email: `invitee-${randomUUID().slice(0, 8)}@example.test` },
  }),
};

/*
 * Notes on the less obvious cells:
 * - `admin` has the admin role but no board flags or rows: it may create boards (org admin) but
 *   not read or edit them (board access is separate from role, as upstream).
 * - `otherOrgMember` is a plain member of another organization (active there): org routes answer
 *   for that organization, so reads succeed and admin-only routes are 403; org A's boards are
 *   "No org access".
 * - Board routes check the board's organization, not the active one.
 */
const MATRIX: Record<keyof typeof ROUTES, Record<Caller, Expected>> = {
  'GET /boards': {
    owner: 200,
    admin: 200,
    allBoardsReader: 200,
    oneBoardReader: 200,
    oneBoardWriter: 200,
    otherOrgMember: 200,
    anonymous: UNAUTHORIZED,
  },
  'POST /boards': {
    owner: 200,
    admin: 200,
    allBoardsReader: FORBIDDEN,
    oneBoardReader: FORBIDDEN,
    oneBoardWriter: FORBIDDEN,
    otherOrgMember: FORBIDDEN,
    anonymous: UNAUTHORIZED,
  },
  'GET /boards/:id': {
    owner: 200,
    admin: BOARD_DENIED,
    allBoardsReader: 200,
    oneBoardReader: 200,
    oneBoardWriter: 200,
    otherOrgMember: NO_ORG_ACCESS,
    anonymous: UNAUTHORIZED,
  },
  'GET /boards/:id (unreadable board)': {
    owner: 200,
    admin: BOARD_DENIED,
    allBoardsReader: 200,
    oneBoardReader: BOARD_DENIED,
    oneBoardWriter: BOARD_DENIED,
    otherOrgMember: NO_ORG_ACCESS,
    anonymous: UNAUTHORIZED,
  },
  'GET /boards/:id (missing)': {
    owner: NOT_FOUND,
    admin: NOT_FOUND,
    allBoardsReader: NOT_FOUND,
    oneBoardReader: NOT_FOUND,
    oneBoardWriter: NOT_FOUND,
    otherOrgMember: NOT_FOUND,
    anonymous: UNAUTHORIZED,
  },
  'PATCH /boards/:id': {
    owner: 200,
    admin: BOARD_DENIED,
    allBoardsReader: BOARD_DENIED,
    oneBoardReader: BOARD_DENIED,
    oneBoardWriter: 200,
    otherOrgMember: NO_ORG_ACCESS,
    anonymous: UNAUTHORIZED,
  },
  'DELETE /boards/:id': {
    owner: 200,
    admin: BOARD_DENIED,
    allBoardsReader: BOARD_DENIED,
    oneBoardReader: BOARD_DENIED,
    oneBoardWriter: 200,
    otherOrgMember: NO_ORG_ACCESS,
    anonymous: UNAUTHORIZED,
  },
  'GET /organizations/me': {
    owner: 200,
    admin: 200,
    allBoardsReader: 200,
    oneBoardReader: 200,
    oneBoardWriter: 200,
    otherOrgMember: 200,
    anonymous: UNAUTHORIZED,
  },
  'GET /organizations/me/members': {
    owner: 200,
    admin: 200,
    allBoardsReader: 200,
    oneBoardReader: 200,
    oneBoardWriter: 200,
    otherOrgMember: 200,
    anonymous: UNAUTHORIZED,
  },
  'GET /organizations/me/invites': {
    owner: 200,
    admin: 200,
    allBoardsReader: FORBIDDEN,
    oneBoardReader: FORBIDDEN,
    oneBoardWriter: FORBIDDEN,
    otherOrgMember: FORBIDDEN,
    anonymous: UNAUTHORIZED,
  },
  'POST /organizations/me/invites': {
    owner: 200,
    admin: 200,
    allBoardsReader: FORBIDDEN,
    oneBoardReader: FORBIDDEN,
    oneBoardWriter: FORBIDDEN,
    otherOrgMember: FORBIDDEN,
    anonymous: UNAUTHORIZED,
  },
};

const CASES = Object.entries(MATRIX).flatMap(([route, row]) =>
  CALLERS.map((caller) => [route, caller, row[caller]] as const),
);

describe('access matrix', () => {
  let t: TestApp;
  let world: World;
  let otherOrg: string;

  beforeAll(async () => {
    t = await createTestApp();
    const ds = t.dataSource;
    const owner = await signIn(t.http, ds);
    const orgA = owner.organizationId;
    const gatewayA = (await buildGateway(ds, orgA)).id;
    const boardX = await buildBoard(ds, orgA, gatewayA, { name: 'X' });
    const boardY = await buildBoard(ds, orgA, gatewayA, { name: 'Y' });
    const oneBoardReader = await signInMember(t.http, ds, orgA);
    const oneBoardWriter = await signInMember(t.http, ds, orgA);
    otherOrg = (await buildOrganization(ds)).id;
    await buildBoard(ds, otherOrg, (await buildGateway(ds, otherOrg)).id);
    const grantOneBoard = async (boardId: string) => {
      await grantBoard(ds, oneBoardReader.memberId, boardId, { canRead: true });
      await grantBoard(ds, oneBoardWriter.memberId, boardId, { canRead: true, canWrite: true });
    };
    await grantOneBoard(boardX.id);
    world = {
      orgA,
      gatewayA,
      boardX,
      boardY,
      users: {
        owner,
        admin: await signInMember(t.http, ds, orgA, { role: 'admin' }),
        allBoardsReader: await signInMember(t.http, ds, orgA, { allBoardsRead: true }),
        oneBoardReader,
        oneBoardWriter,
        otherOrgMember: await signInMember(t.http, ds, otherOrg, { role: 'member' }),
      },
      async freshBoard() {
        const board = await buildBoard(ds, orgA, gatewayA);
        await grantOneBoard(board.id);
        return board;
      },
    };
  });
  afterAll(async () => {
    await t.close();
  });

  async function call(route: string, caller: Caller): Promise<Response> {
    const { method, path, body } = await ROUTES[route](world);
    let req = t.http[method](path);
    const user = world.users[caller];
    if (user) req = req.set(user.headers);
    return body === undefined ? req : req.send(body);
  }

  it.each(CASES)('%s as %s -> %j', async (route, caller, expected) => {
    const res = await call(route, caller);
    const [status, detail] = typeof expected === 'number' ? [expected] : expected;
    expect([res.status, res.body]).toEqual([
      status,
      detail === undefined ? expect.anything() : { detail, request_id: expect.any(String) },
    ]);
  });

  it.each([
    ['owner', ['X', 'Y']],
    ['admin', []],
    ['allBoardsReader', ['X', 'Y']],
    ['oneBoardReader', ['X']],
    ['oneBoardWriter', ['X']],
    ['otherOrgMember', []],
  ] as [Caller, string[]][])('GET /boards as %s lists %j', async (caller, names) => {
    const res = await t.http.get('/api/v1/boards').set(world.users[caller]!.headers).expect(200);
    // Boards created by other cases are named "matrix" or "Board …"; only X and Y are stable.
    const listed = (res.body.items as { name: string }[])
      .map((b) => b.name)
      .filter((n) => n === 'X' || n === 'Y');
    expect(listed).toEqual(names);
  });

  it.each([
    ['owner', 'orgA'],
    ['admin', 'orgA'],
    ['oneBoardReader', 'orgA'],
    ['otherOrgMember', 'otherOrg'],
  ] as [Caller, 'orgA' | 'otherOrg'][])(
    'GET /organizations/me as %s is the active organization (%s)',
    async (caller, which) => {
      const res = await t.http
        .get('/api/v1/organizations/me')
        .set(world.users[caller]!.headers)
        .expect(200);
      expect(res.body.id).toBe(which === 'orgA' ? world.orgA : otherOrg);
    },
  );
});
