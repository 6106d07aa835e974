import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsArray, IsBoolean, IsDefined, IsString, ValidateNested } from 'class-validator';
import { IsOptionalNonNull, IsUuid, MaxChars, MaxItems } from '../../common/validation/decorators';
import { MAX_BOARD_ACCESS_ITEMS, MAX_LENGTH } from '../../common/validation/limits';
import type { User } from '../../users/entities/user.entity';
import type { OrganizationBoardAccess } from '../entities/organization-board-access.entity';
import type { OrganizationMember } from '../entities/organization-member.entity';

export class OrganizationUserRead {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ type: String, nullable: true }) email!: string | null;
  @ApiProperty({ type: String, nullable: true }) name!: string | null;
  @ApiProperty({ type: String, nullable: true }) preferred_name!: string | null;
}

export class OrganizationBoardAccessRead {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) board_id!: string;
  @ApiProperty() can_read!: boolean;
  @ApiProperty() can_write!: boolean;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

export class OrganizationMemberRead {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) organization_id!: string;
  @ApiProperty({ format: 'uuid' }) user_id!: string;
  @ApiProperty() role!: string;
  @ApiProperty() all_boards_read!: boolean;
  @ApiProperty() all_boards_write!: boolean;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
  @ApiProperty({ type: OrganizationUserRead, nullable: true }) user!: OrganizationUserRead | null;
  /** Filled only by GET /organizations/me/member and GET /organizations/me/members/{id}. */
  @ApiProperty({ type: [OrganizationBoardAccessRead] })
  board_access!: OrganizationBoardAccessRead[];
}

export class OrganizationMemberPage {
  @ApiProperty({ type: [OrganizationMemberRead] }) items!: OrganizationMemberRead[];
  @ApiProperty() total!: number;
  @ApiProperty() limit!: number;
  @ApiProperty() offset!: number;
}

export function toOrganizationUserRead(user: User): OrganizationUserRead {
  return { id: user.id, email: user.email, name: user.name, preferred_name: user.preferredName };
}

export function toOrganizationBoardAccessRead(
  row: OrganizationBoardAccess,
): OrganizationBoardAccessRead {
  return {
    id: row.id,
    board_id: row.boardId,
    can_read: row.canRead,
    can_write: row.canWrite,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** `user` comes from `member.user` when loaded; `board_access` is `[]` unless given. */
export function toOrganizationMemberRead(
  member: OrganizationMember,
  boardAccess: OrganizationBoardAccess[] = [],
): OrganizationMemberRead {
  return {
    id: member.id,
    organization_id: member.organizationId,
    user_id: member.userId,
    role: member.role,
    all_boards_read: member.allBoardsRead,
    all_boards_write: member.allBoardsWrite,
    created_at: member.createdAt.toISOString(),
    updated_at: member.updatedAt.toISOString(),
    user: member.user ? toOrganizationUserRead(member.user) : null,
    board_access: boardAccess.map(toOrganizationBoardAccessRead),
  };
}

/** PATCH /organizations/me/members/{id}: the role is trimmed and lowercased, blank is `member`. */
export class OrganizationMemberUpdate {
  @ApiPropertyOptional({ description: 'Free-form; `owner` and `admin` are organization admins' })
  @IsOptionalNonNull()
  @IsString()
  @MaxChars(MAX_LENGTH.keyword)
  role?: string;
}

/** One per-board grant (members and invites). */
export class OrganizationBoardAccessSpec {
  @ApiProperty({ format: 'uuid' })
  @IsDefined()
  @IsUuid()
  board_id!: string;

  @ApiPropertyOptional({ default: true })
  @IsOptionalNonNull()
  @IsBoolean()
  can_read: boolean = true;

  @ApiPropertyOptional({ default: false })
  @IsOptionalNonNull()
  @IsBoolean()
  can_write: boolean = false;
}

/** Board-access fields shared by the access update and the invite. */
export class BoardAccessFields {
  @ApiPropertyOptional({ default: false })
  @IsOptionalNonNull()
  @IsBoolean()
  all_boards_read: boolean = false;

  @ApiPropertyOptional({ default: false })
  @IsOptionalNonNull()
  @IsBoolean()
  all_boards_write: boolean = false;

  @ApiPropertyOptional({ type: [OrganizationBoardAccessSpec], default: [] })
  @IsOptionalNonNull()
  @IsArray()
  @MaxItems(MAX_BOARD_ACCESS_ITEMS)
  @ValidateNested({ each: true })
  @Type(() => OrganizationBoardAccessSpec)
  board_access: OrganizationBoardAccessSpec[] = [];
}

/** PUT /organizations/me/members/{id}/access: a full replace (missing fields reset to defaults). */
export class OrganizationMemberAccessUpdate extends BoardAccessFields {}
