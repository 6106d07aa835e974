/**
 * Session labels. The gateway refuses a label another session of the same agent already has
 * ("label already in use"), and upstream labelled sessions with the bare agent name, so two boards with a
 * "Lead Agent" broke each other's provisioning. A label here always carries its session key,
 * which is unique on a gateway, so two keys never share a label and one key always gets the
 * same label (keeping `sessions.patch` idempotent).
 */
import { createHash } from 'node:crypto';

/** The gateway's schema limit on label length (openclaw@2026.9.6: 1..512 characters). */
export const SESSION_LABEL_MAX_LENGTH = 512;

/** Space kept for the name even when the key is long. */
const MIN_NAME_LENGTH = 12;

export function uniqueSessionLabel(
  name: string,
  sessionKey: string,
  maxLength = SESSION_LABEL_MAX_LENGTH,
): string {
  const displayName = name.replace(/\s+/g, ' ').trim() || 'Agent';
  // Keys longer than fit are replaced by a digest: still unique, still stable.
  const room = maxLength - MIN_NAME_LENGTH - 3;
  const tag =
    sessionKey.length <= room
      ? sessionKey
      : `#${createHash('sha256')
          .update(sessionKey)
          .digest('hex')
          .slice(0, Math.max(8, room - 1))}`;
  const nameRoom = maxLength - tag.length - 3;
  const shortName =
    displayName.length <= nameRoom ? displayName : `${displayName.slice(0, nameRoom - 1)}…`;
  return `${shortName} (${tag})`;
}
