/**
 * Parallel provisioning runs on ONE gateway all patch its config (one heartbeat entry per
 * agent) against a base hash. They must not fail each other with "config changed since last
 * load": patches take turns per gateway in this process and a stale hash is re-read and
 * re-applied. The in-process gateway enforces baseHash as the real one does.
 */
import { OpenClawGatewayService } from '../../src/openclaw/openclaw-gateway.service';
import { ProvisioningService } from '../../src/provisioning/provisioning.service';
import { buildAgent, buildBoard, buildGateway, buildOrganization } from '../support/builders';
import { FakeGateway, serveOpenClawState } from '../support/fake-gateway';
import { createTestApp, type TestApp } from '../support/test-app';

const RUNS = 8;

describe('config patches on one gateway', () => {
  let t: TestApp;
  let fake: FakeGateway;

  beforeAll(async () => {
    t = await createTestApp();
    fake = await FakeGateway.start({ token: 'fake-token' });
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });

  it(`re-reads and re-applies when another writer (another instance) changed the config`, async () => {
    const state = serveOpenClawState(fake);
    const methods = t.app
      .get(OpenClawGatewayService)
      .methods({ url: fake.url, token: 'fake-token', disableDevicePairing: true });
    let interfered = 0;
    const result = await methods.configPatch((config) => {
      // Another instance writes between our read and our patch, twice.
      if (interfered < 2) {
        interfered += 1;
        state.config = { ...state.config, [`other-${interfered}`]: true };
      }
      return { mine: Object.keys(config).length };
    });
    expect(result).toMatchObject({ ok: true });
    expect(state.staleRefusals).toBe(2);
    expect(state.config).toMatchObject({ 'other-1': true, 'other-2': true, mine: 3 });
  });

  it(`${RUNS} parallel provisions of different agents all succeed and all heartbeats land`, async () => {
    const state = serveOpenClawState(fake);
    const organizationId = (await buildOrganization(t.dataSource)).id;
    const gateway = await buildGateway(t.dataSource, organizationId, {
      url: fake.url,
      token: 'fake-token',
      workspaceRoot: '/srv/openclaw',
      disableDevicePairing: true,
    });
    const board = await buildBoard(t.dataSource, organizationId, gateway.id);
    const agents = await Promise.all(
      Array.from({ length: RUNS }, () => buildAgent(t.dataSource, gateway.id, board.id)),
    );
    const provisioning = t.app.get(ProvisioningService);

    const outcomes = await Promise.all(
      agents.map(({ agent }) =>
        provisioning.provisionAgent({ organizationId, agentId: agent.id }, { action: 'provision' }),
      ),
    );

    expect(outcomes.map((outcome) => [outcome.status, outcome.error])).toEqual(
      agents.map(() => ['provisioned', null]),
    );
    const entries = (state.config.agents as { entries: Record<string, { heartbeat?: unknown }> })
      .entries;
    // In one process the writers took turns: no patch was even sent against a stale hash.
    expect(state.staleRefusals).toBe(0);
    for (const { agent } of agents) {
      expect(entries[`mc-${agent.id}`]?.heartbeat).toEqual(
        expect.objectContaining({ every: expect.any(String) }),
      );
    }
  });
});
