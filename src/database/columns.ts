import { CreateDateColumn, UpdateDateColumn } from 'typeorm';

/** Every timestamp is `timestamptz` (UTC); the API prints them as ISO-8601 with `Z`. */
export const CreatedAt = (): PropertyDecorator => CreateDateColumn({ type: 'timestamptz' });
export const UpdatedAt = (): PropertyDecorator => UpdateDateColumn({ type: 'timestamptz' });
