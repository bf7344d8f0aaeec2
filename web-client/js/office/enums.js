// The API's enum values (docs/api.md), in the order the screens offer them.
export const STATUSES = ['requested', 'scheduled', 'live', 'ended', 'reported', 'rejected', 'cancelled', 'no_show'];
export const KINDS = ['consultation', 'case_discussion', 'teaching'];
export const URGENCIES = ['routine', 'urgent', 'emergency'];
export const RECORDING = ['off', 'allowed', 'required'];
export const ROLES = ['doctor', 'specialist', 'coordinator', 'viewer', 'admin'];
export const LEVELS = ['city', 'county', 'township'];
export const SPECIALTIES = ['cardiology', 'neurology', 'general_surgery', 'internal_medicine', 'general_practice', 'pediatrics', 'obstetrics', 'radiology'];
/** Every action the server writes in the audit trail (docs/api.md "Audit trail"), in the order the filter offers them; test/auditlog.test.mjs checks the server's source against it. */
export const AUDIT_ACTIONS = [
  'auth.login', 'auth.login_failed', 'auth.logout', 'auth.password_changed', 'auth.sign_password_failed',
  'admin.bootstrap', 'admin.demo_seeded', 'admin.password_reset', 'admin.site_created', 'admin.site_updated', 'admin.user_created', 'admin.user_updated',
  ...['request', 'emergency_opened', 'accept', 'reject', 'reschedule', 'assign', 'invite', 'cancel', 'start', 'end', 'no_show', 'opinion_draft', 'opinion_sign', 'plan']
    .map((a) => `consultation.${a}`),
  ...['guest_link_create', 'guest_link_revoke', 'guest_arrived', 'settings', 'attach', 'encoder_create', 'encoder_revoke', 'encoder_publish', 'whep_watch'].map((a) => `consultation.${a}`),
  ...['referral_request', 'referral_accept', 'referral_decline', 'referral_cancel', 'referral_admit', 'referral_discharge', 'referral_receive']
    .map((a) => `consultation.${a}`),
  'consultation.join_token', 'consultation.guest_join_token',
  ...['join', 'lobby_wait', 'rejoin', 'admit', 'decline', 'remove', 'leave', 'leave_timeout', 'floor_given', 'floor_taken', 'floor_declined', 'mute_request',
    'rights_revoked', 'rights_narrowed', 'recording_start', 'recording_stop', 'recording_consent', 'recording_decline', 'recording_failed'].map((a) => `room.${a}`),
  ...['list', 'link', 'download', 'access_denied', 'delete', 'expire', 'recovered', 'adopted'].map((a) => `recording.${a}`),
  'attachment.download', 'attachment.view',
];
/** Statuses in which the room can still be joined. */
export const OPEN = ['requested', 'scheduled', 'live'];
