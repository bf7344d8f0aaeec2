// The API's enum values (docs/api.md), in the order the screens offer them.
export const STATUSES = ['requested', 'scheduled', 'live', 'ended', 'reported', 'rejected', 'cancelled', 'no_show'];
export const KINDS = ['consultation', 'case_discussion', 'teaching'];
export const URGENCIES = ['routine', 'urgent', 'emergency'];
export const RECORDING = ['off', 'allowed', 'required'];
export const ROLES = ['doctor', 'specialist', 'coordinator', 'viewer', 'admin'];
export const LEVELS = ['city', 'county', 'township'];
export const SPECIALTIES = ['cardiology', 'neurology', 'general_surgery', 'internal_medicine', 'general_practice', 'pediatrics', 'obstetrics', 'radiology'];
export const AUDIT_ACTIONS = [
  'auth.login', 'auth.login_failed', 'auth.logout', 'auth.password_changed',
  'admin.bootstrap', 'admin.demo_seeded', 'admin.site_created', 'admin.site_updated', 'admin.user_created', 'admin.user_updated',
  ...['request', 'emergency_opened', 'accept', 'reject', 'reschedule', 'assign', 'invite', 'cancel', 'start', 'end', 'no_show', 'opinion_draft', 'opinion_sign', 'plan']
    .map((a) => `consultation.${a}`),
  'consultation.join_token',
  ...['join', 'lobby_wait', 'rejoin', 'admit', 'decline', 'remove', 'leave', 'leave_timeout'].map((a) => `room.${a}`),
];
/** Statuses in which the room can still be joined. */
export const OPEN = ['requested', 'scheduled', 'live'];
