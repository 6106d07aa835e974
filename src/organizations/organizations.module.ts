import { Module } from '@nestjs/common';
import { OrganizationEnrollmentService } from './organization-enrollment.service';
import { OrganizationsController } from './organizations.controller';
import { OrganizationsService } from './organizations.service';

/**
 * Organizations, members and invites (tenancy-api.md §3). Exports the enrollment service
 * (organization creation, invite acceptance) that AuthModule's membership resolution uses;
 * MembershipService and the guards come from the global AuthModule.
 */
@Module({
  controllers: [OrganizationsController],
  providers: [OrganizationsService, OrganizationEnrollmentService],
  exports: [OrganizationsService, OrganizationEnrollmentService],
})
export class OrganizationsModule {}
