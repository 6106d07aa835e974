import type { Agent } from '../agents/entities/agent.entity';
import type { User } from '../users/entities/user.entity';
import { actorDisplayName } from './board-memory.service';

describe('actorDisplayName (the source of a chat item posted without one)', () => {
  const user = (fields: Partial<User>) => ({ type: 'user', user: fields as User }) as const;

  it("is an agent's name", () => {
    expect(actorDisplayName({ type: 'agent', agent: { name: 'Worker 1' } as Agent })).toBe(
      'Worker 1',
    );
  });

  it("is a user's preferred name, else name, else User (empty counts as unset, as upstream)", () => {
    expect(actorDisplayName(user({ preferredName: 'Ada', name: 'Ada L' }))).toBe('Ada');
    expect(actorDisplayName(user({ preferredName: null, name: 'Ada L' }))).toBe('Ada L');
    expect(actorDisplayName(user({ preferredName: '', name: '' }))).toBe('User');
    expect(actorDisplayName(user({ preferredName: null, name: null }))).toBe('User');
  });
});
