import { OnboardingTenancy1796400000000 } from './1796400000000-OnboardingTenancy';
import { AgentListIndex1796800000000 } from './1796800000000-AgentListIndex';
import { BoardSettings1796300000000 } from './1796300000000-BoardSettings';
import { BoardMemoryTenancy1796200000000 } from './1796200000000-BoardMemoryTenancy';
import { BoardDeletionChangeLog1796210000000 } from './1796210000000-BoardDeletionChangeLog';
import { ChangeLog1796031066627 } from './1796031066627-ChangeLog';
import { AgentNameUniqueness1796040000000 } from './1796040000000-AgentNameUniqueness';
import { TenantColumnsOnAgentsAndActivity1796030682839 } from './1796030682839-TenantColumnsOnAgentsAndActivity';
import { AgentPendingTokens1796021972296 } from './1796021972296-AgentPendingTokens';
import { BoardGatewaySameOrganization1796022163975 } from './1796022163975-BoardGatewaySameOrganization';
import { ProvisioningEngine1795511720044 } from './1795511720044-ProvisioningEngine';
import { GatewayClient1795508497583 } from './1795508497583-GatewayClient';
import { Init1795504638889 } from './1795504638889-Init';
/**
 * Every migration class, in order. Listed explicitly (not globbed) so the build, ts-jest and the
 * CLI all load the same set. `npm run migration:generate -- <Name>` appends new ones here.
 */
export const MIGRATIONS: (new () => unknown)[] = [
  Init1795504638889,
  GatewayClient1795508497583,
  ProvisioningEngine1795511720044,
  AgentPendingTokens1796021972296,
  BoardGatewaySameOrganization1796022163975,
  TenantColumnsOnAgentsAndActivity1796030682839,
  ChangeLog1796031066627,
  AgentNameUniqueness1796040000000,
  BoardMemoryTenancy1796200000000,
  BoardDeletionChangeLog1796210000000,
  BoardSettings1796300000000,
  OnboardingTenancy1796400000000,
  AgentListIndex1796800000000,
];
