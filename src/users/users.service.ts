import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { UserUpdate } from './dto/user.dto';
import { User } from './entities/user.entity';

const UPDATABLE: [keyof UserUpdate, keyof User][] = [
  ['name', 'name'],
  ['preferred_name', 'preferredName'],
  ['pronouns', 'pronouns'],
  ['timezone', 'timezone'],
  ['notes', 'notes'],
  ['context', 'context'],
];

@Injectable()
export class UsersService {
  constructor(@InjectRepository(User) private readonly users: Repository<User>) {}

  async updateProfile(user: User, update: UserUpdate): Promise<User> {
    const changes: Partial<User> = {};
    for (const [field, column] of UPDATABLE) {
      const value = update[field];
      if (value !== undefined) (changes as Record<string, unknown>)[column] = value;
    }
    if (Object.keys(changes).length > 0) await this.users.update({ id: user.id }, changes);
    return this.users.findOneByOrFail({ id: user.id });
  }
}
