import { Module } from '@nestjs/common';
import { ProvisioningModule } from '../provisioning/provisioning.module';
import { OrganizationDeletionService } from './organization-deletion.service';
import { OrganizationEnrollmentService } from './organization-enrollment.service';
import { OrganizationsController } from './organizations.controller';
import { OrganizationsService } from './organizations.service';

/**
 * Organizations, members and invites (tenancy-api.md §3). Exports the enrollment service
 * (organization creation, invite acceptance) that AuthModule's membership resolution uses;
 * MembershipService and the guards come from the global AuthModule.
 */
@Module({
  // The provisioning engine removes a deleted organization's agents from their gateways.
  imports: [ProvisioningModule],
  controllers: [OrganizationsController],
  providers: [OrganizationsService, OrganizationEnrollmentService, OrganizationDeletionService],
  exports: [OrganizationsService, OrganizationEnrollmentService, OrganizationDeletionService],
})
export class OrganizationsModule {}
