import { ApiProperty } from '@nestjs/swagger';
import { IsDefined, IsString } from 'class-validator';
import { IsUuid, MaxChars } from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import type { Organization } from '../entities/organization.entity';

/** POST /organizations. The name is trimmed by the service; blank after trimming is a 422. */
export class OrganizationCreate {
  @ApiProperty()
  @IsDefined()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  name!: string;
}

/** PATCH /organizations/me/active. */
export class OrganizationActiveUpdate {
  @ApiProperty({ format: 'uuid' })
  @IsDefined()
  @IsUuid()
  organization_id!: string;
}

export class OrganizationRead {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

export function toOrganizationRead(organization: Organization): OrganizationRead {
  return {
    id: organization.id,
    name: organization.name,
    created_at: organization.createdAt.toISOString(),
    updated_at: organization.updatedAt.toISOString(),
  };
}

/** One organization the caller belongs to, with the caller's role in it. */
export class OrganizationListItem {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() role!: string;
  @ApiProperty() is_active!: boolean;
}

export function toOrganizationListItem(
  organization: Organization,
  role: string,
  isActive: boolean,
): OrganizationListItem {
  return { id: organization.id, name: organization.name, role, is_active: isActive };
}
