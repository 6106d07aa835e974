import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsDefined, IsString } from 'class-validator';
import { IsOptionalNonNull, MaxChars } from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import type { OrganizationInvite } from '../entities/organization-invite.entity';
import { BoardAccessFields } from './member.dto';

/** POST /organizations/me/invites. Email and role are normalised by the service. */
export class OrganizationInviteCreate extends BoardAccessFields {
  @ApiProperty({ description: 'Trimmed and lowercased; the format is not checked' })
  @IsDefined()
  @IsString()
  @MaxChars(MAX_LENGTH.email)
  invited_email!: string;

  @ApiPropertyOptional({ default: 'member' })
  @IsOptionalNonNull()
  @IsString()
  @MaxChars(MAX_LENGTH.keyword)
  role: string = 'member';
}

/** POST /organizations/invites/accept. The token must match exactly. */
export class OrganizationInviteAccept {
  @ApiProperty()
  @IsDefined()
  @IsString()
  @MaxChars(MAX_LENGTH.token)
  token!: string;
}

export class OrganizationInviteRead {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) organization_id!: string;
  @ApiProperty() invited_email!: string;
  @ApiProperty() role!: string;
  @ApiProperty() all_boards_read!: boolean;
  @ApiProperty() all_boards_write!: boolean;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The secret invite token; null for an owner invite shown to a non-owner',
  })
  token!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) created_by_user_id!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) accepted_by_user_id!:
    string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) accepted_at!: string | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

export class OrganizationInvitePage {
  @ApiProperty({ type: [OrganizationInviteRead] }) items!: OrganizationInviteRead[];
  @ApiProperty() total!: number;
  @ApiProperty() limit!: number;
  @ApiProperty() offset!: number;
}

/** The invite as read; `revealToken` false shows the token as null (see mayRevealInviteToken). */
export function toOrganizationInviteRead(
  invite: OrganizationInvite,
  revealToken: boolean,
): OrganizationInviteRead {
  return {
    id: invite.id,
    organization_id: invite.organizationId,
    invited_email: invite.invitedEmail,
    role: invite.role,
    all_boards_read: invite.allBoardsRead,
    all_boards_write: invite.allBoardsWrite,
    token: revealToken ? invite.token : null,
    created_by_user_id: invite.createdByUserId,
    accepted_by_user_id: invite.acceptedByUserId,
    accepted_at: invite.acceptedAt ? invite.acceptedAt.toISOString() : null,
    created_at: invite.createdAt.toISOString(),
    updated_at: invite.updatedAt.toISOString(),
  };
}
