import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString } from 'class-validator';
import { MaxChars } from '../../common/validation/decorators';
import { MAX_LENGTH } from '../../common/validation/limits';
import type { User } from '../entities/user.entity';

export class UserRead {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() clerk_user_id!: string;
  @ApiProperty({ type: String, nullable: true }) email!: string | null;
  @ApiProperty({ type: String, nullable: true }) name!: string | null;
  @ApiProperty({ type: String, nullable: true }) preferred_name!: string | null;
  @ApiProperty({ type: String, nullable: true }) pronouns!: string | null;
  @ApiProperty({ type: String, nullable: true }) timezone!: string | null;
  @ApiProperty({ type: String, nullable: true }) notes!: string | null;
  @ApiProperty({ type: String, nullable: true }) context!: string | null;
  @ApiProperty() is_super_admin!: boolean;
}

export function toUserRead(user: User): UserRead {
  return {
    id: user.id,
    clerk_user_id: user.clerkUserId,
    email: user.email,
    name: user.name,
    preferred_name: user.preferredName,
    pronouns: user.pronouns,
    timezone: user.timezone,
    notes: user.notes,
    context: user.context,
    is_super_admin: user.isSuperAdmin,
  };
}

/** Only the keys sent are written; an explicit null clears the field. */
export class UserUpdate {
  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  name?: string | null;
  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.name)
  preferred_name?: string | null;
  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.shortText)
  pronouns?: string | null;
  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.shortText)
  timezone?: string | null;
  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  notes?: string | null;
  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @MaxChars(MAX_LENGTH.longText)
  context?: string | null;
}
