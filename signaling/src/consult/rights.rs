//! What a user may do in a consultation's room, decided from the record and the account as
//! they are now. `/join` puts it in a room token; the socket checks it again when it opens,
//! and the room is told when it shrinks, so a token never carries more than its holder has.

use super::model::{Consultation, Kind, RecordingPolicy, Role, User};
use crate::auth::Grants;
use crate::ids::UserId;

/// The user's grants in the consultation's room, or `None` when they have no place in it (not
/// involved, or the account is disabled).
pub fn room_grants(c: &Consultation, user: &User) -> Option<Grants> {
    if user.disabled || !c.involves(&user.id) {
        return None;
    }
    let host = c.is_host(&user.id);
    // Trainees watch a teaching broadcast; viewers never publish.
    let audience = user.role == Role::Viewer || (c.kind == Kind::Teaching && !host);
    Some(Grants {
        can_publish: !audience,
        can_subscribe: true,
        can_publish_data: true,
        can_record: host && c.recording != RecordingPolicy::Off,
        room_admin: host,
        hidden: false,
        // A class of hundreds is not a roster: each trainee is told of the hosts and whoever
        // speaks, and the hosts of everyone. In a consultation everyone sees who is present.
        audience: c.kind == Kind::Teaching && !host,
    })
}

/// The grants of the guest who came through link `link`, or `None` when it gives no place
/// (withdrawn, never used, or the consultation is over). A guest speaks and shows like an
/// invited doctor, except in a teaching broadcast, where they watch; never hosts or records.
/// Expiry ends the link, not a guest already in: their own token runs out with it.
pub fn guest_grants(c: &Consultation, link: &str) -> Option<Grants> {
    let g = c.guests.iter().find(|g| g.id == link)?;
    if g.revoked_at.is_some() || g.used_at.is_none() || c.status.is_closed() {
        return None;
    }
    Some(Grants {
        can_publish: c.kind != Kind::Teaching,
        can_subscribe: true,
        can_publish_data: true,
        can_record: false,
        room_admin: false,
        hidden: false,
        audience: c.kind == Kind::Teaching,
    })
}

/// What an encoder publishing with credential `id` may do: publish, nothing else (it watches
/// nobody, hosts nothing, records nothing). `None` once the credential is withdrawn or past
/// its time, or the consultation is over.
pub fn encoder_grants(c: &Consultation, id: &str, now: jiff::Timestamp) -> Option<Grants> {
    let e = c.encoders.iter().find(|e| e.id == id)?;
    if !e.open_at(now) || c.status.is_closed() {
        return None;
    }
    Some(Grants {
        can_publish: true,
        can_subscribe: false,
        can_publish_data: false,
        can_record: false,
        room_admin: false,
        hidden: false,
        audience: false,
    })
}

/// What both allow: a token's grants narrowed to what its holder may still do.
pub fn narrow(token: Grants, now: Grants) -> Grants {
    Grants {
        can_publish: token.can_publish && now.can_publish,
        can_subscribe: token.can_subscribe && now.can_subscribe,
        can_publish_data: token.can_publish_data && now.can_publish_data,
        can_record: token.can_record && now.can_record,
        room_admin: token.room_admin && now.room_admin,
        hidden: token.hidden || now.hidden,
        audience: token.audience || now.audience,
    }
}

/// Whose rights a change of the record took away: each account no longer involved (`None`),
/// and each that is no longer a host (the most it may now do, for [`narrow`]).
pub fn shrunk(before: &Consultation, after: &Consultation) -> Vec<(UserId, Option<Grants>)> {
    let mut out = Vec::new();
    for u in before.involved_users() {
        if !after.involves(&u) {
            out.push((u, None));
        } else if before.is_host(&u) && !after.is_host(&u) {
            let most = Grants {
                can_publish: after.kind != Kind::Teaching,
                can_subscribe: true,
                can_publish_data: true,
                can_record: false,
                room_admin: false,
                hidden: false,
                audience: after.kind == Kind::Teaching,
            };
            out.push((u, Some(most)));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::consult::lifecycle::Actor;
    use crate::consult::lifecycle::{Action, RequestInput, Rules, apply, new_request};
    use crate::consult::model::Urgency;
    use jiff::Timestamp;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn user(id: &str, role: Role) -> User {
        User {
            id: UserId(id.into()),
            username: id.into(),
            display_name: id.into(),
            role,
            site_id: None,
            specialty: None,
            disabled: false,
            password_hash: String::new(),
            token_generation: 0,
            must_change_password: false,
            created_at: t("2026-01-01T00:00:00Z"),
        }
    }

    fn scheduled() -> Consultation {
        let input = RequestInput {
            kind: Kind::Consultation,
            specialty: "cardiology".into(),
            urgency: Urgency::Routine,
            summary: "chest pain".into(),
            wished: None,
            recording: RecordingPolicy::Allowed,
            participants: vec![],
            patient: None,
        };
        let doc = Actor { id: UserId("doc".into()), role: Role::Doctor };
        let c = new_request(&doc, None, input, t("2026-01-01T00:00:00Z"), &Rules::default()).unwrap();
        let accept = Action::Accept {
            specialists: vec![UserId("spec-a".into()), UserId("spec-b".into())],
            start: t("2026-01-02T06:00:00Z"),
            duration_minutes: 30,
            recording: None,
        };
        let coord = Actor { id: UserId("coord".into()), role: Role::Coordinator };
        apply(&c, &coord, accept, t("2026-01-01T01:00:00Z"), &Rules::default()).unwrap()
    }

    #[test]
    fn the_lead_specialist_hosts_and_a_disabled_account_has_no_place() {
        let c = scheduled();
        let lead = room_grants(&c, &user("spec-a", Role::Specialist)).unwrap();
        assert!(lead.room_admin && lead.can_record && lead.can_publish);
        let second = room_grants(&c, &user("spec-b", Role::Specialist)).unwrap();
        assert!(!second.room_admin && !second.can_record && second.can_publish);
        let mut off = user("spec-a", Role::Specialist);
        off.disabled = true;
        assert_eq!(room_grants(&c, &off), None);
        assert_eq!(room_grants(&c, &user("stranger", Role::Specialist)), None);
    }

    /// Issue 13 item 6: the reschedule that replaced the lead specialist takes the room from
    /// them (no longer involved) and host rights from nobody else.
    #[test]
    fn a_reschedule_that_replaces_the_lead_takes_their_place() {
        let before = scheduled();
        let mut after = before.clone();
        after.specialists = vec![UserId("spec-b".into()), UserId("spec-c".into())];
        let changes = shrunk(&before, &after);
        assert_eq!(changes, vec![(UserId("spec-a".into()), None)]);
        // The old lead kept on as second specialist keeps a place but not the host's rights.
        after.specialists = vec![UserId("spec-b".into()), UserId("spec-a".into())];
        let changes = shrunk(&before, &after);
        assert_eq!(changes.len(), 1);
        let (who, most) = &changes[0];
        assert_eq!(who.as_str(), "spec-a");
        let most = most.unwrap();
        assert!(!most.room_admin && !most.can_record && most.can_publish);
        let was = room_grants(&before, &user("spec-a", Role::Specialist)).unwrap();
        assert_eq!(narrow(was, most), room_grants(&after, &user("spec-a", Role::Specialist)).unwrap());
    }
}
