import { computedStatus, OFFLINE_AFTER_MS } from '../agents/dto/agent.dto';
import { heartbeatForGateway } from '../openclaw/compat';
import {
  agentGatewayIdentity,
  agentKind,
  boardAgentSessionKey,
  gatewayAgentIdFromSessionKey,
  leadSessionKey,
  mainSessionKey,
  slugify,
  workspacePath,
} from './agent-identity';
import { DEFAULT_HEARTBEAT_CONFIG, effectiveHeartbeat } from './heartbeat';
import { templatedFiles } from './templates';
import { planWorkspaceFiles, type WorkspaceFilePlanInput } from './workspace-files';

const GATEWAY = '0b6f7f4e-8a11-4c7e-9f55-2f1a7d0c9e01';
const BOARD = '7d1e2c3b-4a59-4f68-8e77-1a2b3c4d5e6f';
const AGENT = 'c0ffee00-1234-4abc-8def-001122334455';

describe('agent identity', () => {
  it('gives each kind of agent a key naming a gateway agent we create', () => {
    expect(mainSessionKey(GATEWAY)).toBe(`agent:mc-gateway-${GATEWAY}:main`);
    expect(leadSessionKey(BOARD)).toBe(`agent:lead-${BOARD}:main`);
    expect(boardAgentSessionKey(AGENT)).toBe(`agent:mc-${AGENT}:main`);
  });

  it('derives the gateway agent id from the stored key, as _agent_key does', () => {
    expect(gatewayAgentIdFromSessionKey('agent:alice:main')).toBe('alice');
    expect(gatewayAgentIdFromSessionKey(`agent:gateway-${GATEWAY}:main`)).toBe(
      `gateway-${GATEWAY}`,
    );
    expect(gatewayAgentIdFromSessionKey('agent::main')).toBeNull();
    expect(gatewayAgentIdFromSessionKey('session:alice:main')).toBeNull();
    expect(gatewayAgentIdFromSessionKey(null)).toBeNull();
  });

  const row = (overrides: Partial<Parameters<typeof agentGatewayIdentity>[0]> = {}) => ({
    id: AGENT,
    boardId: BOARD as string | null,
    gatewayId: GATEWAY,
    isBoardLead: false,
    openclawSessionId: null as string | null,
    ...overrides,
  });

  it('resolves new rows by kind, with the workspace under the gateway root', () => {
    expect(agentGatewayIdentity(row(), { workspaceRoot: '~/.openclaw/' })).toEqual({
      kind: 'board',
      gatewayAgentId: `mc-${AGENT}`,
      sessionKey: `agent:mc-${AGENT}:main`,
      workspacePath: `~/.openclaw/workspace-mc-${AGENT}`,
    });
    expect(
      agentGatewayIdentity(row({ isBoardLead: true }), { workspaceRoot: '/srv' }),
    ).toMatchObject({
      kind: 'lead',
      gatewayAgentId: `lead-${BOARD}`,
      workspacePath: `/srv/workspace-lead-${BOARD}`,
    });
    expect(agentGatewayIdentity(row({ boardId: null }), { workspaceRoot: '/srv' })).toMatchObject({
      kind: 'main',
      gatewayAgentId: `mc-gateway-${GATEWAY}`,
      sessionKey: `agent:mc-gateway-${GATEWAY}:main`,
    });
  });

  it('keeps rows with an older key on the gateway agent that key names', () => {
    const legacy = agentGatewayIdentity(row({ openclawSessionId: 'agent:alice:main' }), {
      workspaceRoot: '/srv',
    });
    expect(legacy).toMatchObject({
      gatewayAgentId: 'alice',
      sessionKey: 'agent:alice:main',
      workspacePath: '/srv/workspace-alice',
    });
    // A key without an agent segment falls back to the kind's id, never to a name slug.
    expect(
      agentGatewayIdentity(row({ openclawSessionId: 'custom-key' }), { workspaceRoot: '/srv' }),
    ).toMatchObject({ gatewayAgentId: `mc-${AGENT}`, sessionKey: 'custom-key' });
  });

  it('classifies kinds and slugs paths', () => {
    expect(agentKind({ boardId: null, isBoardLead: false })).toBe('main');
    expect(agentKind({ boardId: BOARD, isBoardLead: true })).toBe('lead');
    expect(slugify('  Ünïcode Agent ✓ ')).toBe('n-code-agent');
    expect(workspacePath('/root//', 'Agent_X')).toBe('/root/workspace-agent-x');
  });
});

describe('heartbeat merge', () => {
  it('puts the agent config over the default {every: 10m, target: last}', () => {
    expect(DEFAULT_HEARTBEAT_CONFIG).toEqual({ every: '10m', target: 'last' });
    expect(effectiveHeartbeat(null)).toEqual({ every: '10m', target: 'last' });
    expect(effectiveHeartbeat({ every: '30m', activeHours: { start: '08:00' } })).toEqual({
      every: '30m',
      target: 'last',
      activeHours: { start: '08:00' },
    });
    // null means unset, not "send null"
    expect(effectiveHeartbeat({ target: null })).toEqual({ every: '10m', target: 'last' });
  });

  it('keeps only keys the gateway accepts (upstream includeReasoning is dropped on v4)', () => {
    const merged = effectiveHeartbeat({ includeReasoning: false, every: '5m', bogus: 1 });
    expect(heartbeatForGateway(merged, 'entries')).toEqual({
      heartbeat: { every: '5m', target: 'last' },
      dropped: ['includeReasoning', 'bogus'],
    });
    expect(heartbeatForGateway(merged, 'list').heartbeat).toEqual({
      every: '5m',
      target: 'last',
      includeReasoning: false,
    });
  });
});

describe('workspace file selection', () => {
  const TEMPLATED = templatedFiles('board');
  // What openclaw@2026.9.6 lists for an agent it just created.
  const FRESH_V4 = [
    { name: 'AGENTS.md', missing: false },
    { name: 'SOUL.md', missing: false },
    { name: 'USER.md', missing: false },
    { name: 'BOOTSTRAP.md', missing: false },
    { name: 'MEMORY.md', missing: true },
  ];
  const plan = (overrides: Partial<WorkspaceFilePlanInput>) =>
    planWorkspaceFiles({
      templated: TEMPLATED,
      listed: FRESH_V4,
      action: 'provision',
      forceBootstrap: false,
      createdNow: false,
      ...overrides,
    });

  it('writes the six v4 files, AGENTS.md (the token carrier) first; TOOLS/HEARTBEAT only if listed', () => {
    const fresh = plan({ createdNow: true });
    expect(fresh.write).toEqual([
      'AGENTS.md',
      'BOOTSTRAP.md',
      'IDENTITY.md',
      'MEMORY.md',
      'SOUL.md',
      'USER.md',
    ]);
    expect(fresh.skip).toEqual([
      { name: 'HEARTBEAT.md', reason: 'unsupported' },
      { name: 'TOOLS.md', reason: 'unsupported' },
    ]);
    const legacy = plan({
      createdNow: true,
      listed: [...FRESH_V4, { name: 'TOOLS.md' }, { name: 'HEARTBEAT.md' }],
    });
    expect(legacy.write.slice(0, 2)).toEqual(['AGENTS.md', 'TOOLS.md']);
    expect(legacy.write).toContain('HEARTBEAT.md');
  });

  it('keeps agent-edited USER.md/MEMORY.md unless the gateway agent is brand new', () => {
    const update = plan({
      action: 'update',
      listed: FRESH_V4.map((entry) => ({ ...entry, missing: false })),
    });
    expect(update.skip).toEqual(
      expect.arrayContaining([
        { name: 'USER.md', reason: 'agent-edited' },
        { name: 'MEMORY.md', reason: 'agent-edited' },
      ]),
    );
    expect(update.write).not.toContain('USER.md');
    // Missing editable files are written.
    expect(plan({ action: 'update' }).write).toContain('MEMORY.md');
    // The gateway seeds a stock USER.md on create: ours replaces it.
    expect(plan({ createdNow: true }).write).toContain('USER.md');
  });

  it('applies the BOOTSTRAP.md rule (contract §5.6 step 8)', () => {
    const consumed = FRESH_V4.map((entry) =>
      entry.name === 'BOOTSTRAP.md' ? { ...entry, missing: true } : entry,
    );
    expect(plan({ action: 'provision', listed: consumed }).write).toContain('BOOTSTRAP.md');
    expect(plan({ action: 'update', listed: consumed }).skip).toContainEqual({
      name: 'BOOTSTRAP.md',
      reason: 'bootstrap-done',
    });
    expect(plan({ action: 'update', listed: consumed, forceBootstrap: true }).write).toContain(
      'BOOTSTRAP.md',
    );
    expect(plan({ action: 'update', listed: [] }).write).not.toContain('BOOTSTRAP.md');
    // Today's gateway stops listing it once it deleted it at the first run.
    const unlisted = FRESH_V4.filter((entry) => entry.name !== 'BOOTSTRAP.md');
    expect(plan({ action: 'update', listed: unlisted }).write).not.toContain('BOOTSTRAP.md');
    // Still pending (listed and present): refreshed.
    expect(plan({ action: 'update' }).write).toContain('BOOTSTRAP.md');
  });
});

describe('computed status', () => {
  const now = new Date('2026-11-24T12:00:00Z');
  it('is provisioning until seen, offline after 10 minutes, and keeps updating/deleting', () => {
    expect(computedStatus({ status: 'online', lastSeenAt: null }, now)).toBe('provisioning');
    expect(
      computedStatus(
        { status: 'online', lastSeenAt: new Date(now.getTime() - OFFLINE_AFTER_MS - 1) },
        now,
      ),
    ).toBe('offline');
    expect(
      computedStatus({ status: 'online', lastSeenAt: new Date(now.getTime() - 1000) }, now),
    ).toBe('online');
    expect(computedStatus({ status: 'updating', lastSeenAt: null }, now)).toBe('updating');
  });
});
