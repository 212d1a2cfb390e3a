import { SERVER_ID, UNSET_ID } from '../../src/protocol';

/** Longest user id accepted at login, and so the longest receiver a message may name. */
export const MAX_USER_ID_LENGTH = 256;

/**
 * Whether `id` can be a user: a string, not blank, not the server ("0") or the unset id ("-1"), at most
 * {@link MAX_USER_ID_LENGTH} characters. Login and message routing share this rule, so a message can only
 * be addressed (and stored) for an id that could one day log in and collect it.
 */
export function isValidUserId(id: unknown): id is string {
  return typeof id === 'string' && id.trim() !== '' && id !== SERVER_ID && id !== UNSET_ID && id.length <= MAX_USER_ID_LENGTH;
}
