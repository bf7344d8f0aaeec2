//! Consultations: request, schedule, run, report — and the room token to join one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiJson, ApiQuery, Session, page_bounds};
use crate::consult::lifecycle::{self, Action, RequestInput};
use crate::consult::model::{Consultation, RecordingPolicy, Role, Status, UserView};
use crate::error::AppError;
use crate::ids::{ConsultationId, UserId};
use crate::service::{self, not_found};
use crate::state::AppState;
use crate::store::{AuditEntry, ConsultationQuery};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/consultations", post(request).get(list))
        .route("/consultations/{id}", get(get_one))
        .route("/consultations/{id}/report", get(report))
        .route("/consultations/{id}/join", post(join))
        .route("/consultations/{id}/{action}", post(act))
        .route("/specialists/{id}/bookings", get(bookings))
}

pub(super) fn parse_cid(raw: &str) -> Result<ConsultationId, AppError> {
    ConsultationId::parse(raw).ok_or_else(not_found)
}

fn can_see(s: &Session, c: &Consultation) -> bool {
    c.visible_to(&s.user.id, s.user.role)
}

pub(super) async fn load_visible(st: &AppState, s: &Session, id: &str) -> Result<Consultation, AppError> {
    let id = parse_cid(id)?;
    match st.store.get_consultation(&id).await? {
        Some(c) if can_see(s, &c) => Ok(c),
        _ => Err(not_found()),
    }
}

/// Every user named in a request must exist; specialists must be specialists.
async fn check_users(st: &AppState, field: &'static str, ids: &[UserId], role: Option<Role>) -> Result<(), AppError> {
    for id in ids {
        match st.store.get_user(id).await? {
            Some(u) if !u.disabled && role.is_none_or(|r| u.role == r) => {}
            Some(_) if role == Some(Role::Specialist) => {
                return Err(AppError::field(
                    "not_a_specialist",
                    field,
                    json!({ "user": id }),
                    format!("user {id} is not an active specialist"),
                ));
            }
            _ => {
                return Err(AppError::field(
                    "user_not_available",
                    field,
                    json!({ "user": id }),
                    format!("user {id} does not exist or is disabled"),
                ));
            }
        }
    }
    Ok(())
}

async fn request(
    State(st): State<AppState>,
    s: Session,
    ApiJson(input): ApiJson<RequestInput>,
) -> Result<(StatusCode, Json<Consultation>), AppError> {
    check_users(&st, "participants", &input.participants, None).await?;
    let actor = s.actor();
    let now = Timestamp::now();
    let mut c = lifecycle::new_request(&actor, s.user.site_id.clone(), input, now, &st.rules)?;
    c.number = Some(report_number(&st, &c, now).await?);
    let mut audit = vec![service::audit_for(&actor, "request", &c, now)];
    if c.status == Status::Live {
        audit.push(service::audit_for(&actor, "emergency_opened", &c, now));
        tracing::warn!(consultation = %c.id, "emergency consultation opened");
    }
    st.store.commit_consultation(&c, None, &audit).await?;
    st.metrics.transitions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    st.events.publish(&c, if c.status == Status::Live { "emergency_opened" } else { "request" });
    Ok((StatusCode::CREATED, Json(c)))
}

/// `HZ-2026-000123`: the year the request was made at the requesting site (Beijing time for a
/// site without a zone), and its place in that year's series.
async fn report_number(st: &AppState, c: &Consultation, now: Timestamp) -> Result<String, AppError> {
    let zone = match &c.requester_site {
        Some(id) => st.store.get_site(id).await?.map(|s| s.time_zone),
        None => None,
    };
    let tz = zone.and_then(|z| jiff::tz::TimeZone::get(&z).ok()).unwrap_or_else(|| st.rules.time_zone.clone());
    let year = now.to_zoned(tz).year();
    let n = st.store.next_number(&format!("report-{year}")).await?;
    Ok(format!("HZ-{year}-{n:06}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Comma-separated statuses.
    status: Option<String>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    mine: Option<bool>,
    order: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
    /// The requesting site's patient number (门诊号 / 住院号): exact, letter case ignored.
    patient_number: Option<String>,
}

/// How many of the newest visible consultations a search by patient number looks through
/// (the number is patient data, sealed at rest: no index holds it).
const PATIENT_SEARCH_DEPTH: usize = 5000;

async fn list(
    State(st): State<AppState>,
    s: Session,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::response::Response, AppError> {
    let (offset, limit) = page_bounds(q.offset, q.limit)?;
    let mut statuses = Vec::new();
    for part in q.status.as_deref().unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        statuses.push(
            Status::parse(part).ok_or_else(|| {
                AppError::field("unknown_status", "status", json!({}), format!("unknown status {part}"))
            })?,
        );
    }
    if let (Some(f), Some(t)) = (q.from, q.to)
        && t <= f
    {
        return Err(AppError::field("range_reversed", "to", json!({}), "to must be after from"));
    }
    let ascending = match q.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(AppError::field("unknown_order", "order", json!({}), "order is asc or desc")),
    };
    // The consultation centre sees the whole queue; everyone else only their own.
    let everyone = s.user.role == Role::Coordinator && !q.mine.unwrap_or(false);
    let query = ConsultationQuery {
        statuses,
        from: q.from,
        to: q.to,
        involving: (!everyone).then(|| s.user.id.clone()),
        ascending,
        offset,
        limit,
    };
    let page = match q.patient_number.as_deref().map(str::trim) {
        None | Some("") => st.store.list_consultations(&query).await?,
        Some(number) => by_patient_number(&st, query, number).await?,
    };
    let today = st.rules.today(Timestamp::now());
    let items: Vec<ListItem> = page.items.iter().map(|c| ListItem::of(c, today)).collect();
    // Serialised straight to bytes: made into a JSON value first, every item became a map of
    // its keys again (a tenth of the server's CPU while listing).
    Ok(Json(ListPage { items, total: page.total, next_offset: page.next_offset }).into_response())
}

/// A page of the list, as sent.
#[derive(serde::Serialize)]
struct ListPage<'a> {
    items: Vec<ListItem<'a>>,
    total: usize,
    next_offset: Option<usize>,
}

/// A consultation as lists show it. Lists carry no clinical text: the case summary, the
/// patient, opinions and plan are read one consultation at a time, by someone who opened it;
/// the patient shows as a masked name, sex and age, enough to tell cases apart. Serialised
/// straight from the record: turning the whole record into a JSON value and removing most of
/// it was the largest cost of a list (200,000 consultations in the store: docs/performance.md).
#[derive(serde::Serialize)]
struct ListItem<'a> {
    id: &'a ConsultationId,
    version: u64,
    kind: &'a crate::consult::model::Kind,
    specialty: &'a str,
    urgency: &'a crate::consult::model::Urgency,
    #[serde(skip_serializing_if = "Option::is_none")]
    number: Option<&'a String>,
    wished: &'a Option<crate::consult::model::Window>,
    recording: &'a RecordingPolicy,
    status: &'a Status,
    requester: &'a UserId,
    requester_site: &'a Option<crate::ids::SiteId>,
    coordinator: &'a Option<UserId>,
    specialists: &'a [UserId],
    participants: &'a [UserId],
    start: &'a Option<Timestamp>,
    duration_minutes: Option<u32>,
    created_at: &'a Timestamp,
    updated_at: &'a Timestamp,
    started_at: &'a Option<Timestamp>,
    ended_at: &'a Option<Timestamp>,
    encoders: &'a [crate::consult::model::EncoderLink],
    auto_admit: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sealed: Option<&'a crate::consult::model::SealedCase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patient_summary: Option<crate::consult::patient::PatientSummary>,
}

impl<'a> ListItem<'a> {
    fn of(c: &'a Consultation, today: jiff::civil::Date) -> Self {
        // Every field of the record but those a list leaves out (listed in the test below).
        let Consultation {
            id,
            version,
            kind,
            specialty,
            urgency,
            number,
            summary: _,
            patient,
            wished,
            recording,
            status,
            requester,
            requester_site,
            coordinator,
            specialists,
            participants,
            start,
            duration_minutes,
            reason: _,
            opinions: _,
            plan: _,
            created_at,
            updated_at,
            started_at,
            ended_at,
            guests: _,
            encoders,
            auto_admit,
            attachments: _,
            referrals: _,
            sealed,
        } = c;
        ListItem {
            id,
            version: *version,
            kind,
            specialty,
            urgency,
            number: number.as_ref(),
            wished,
            recording,
            status,
            requester,
            requester_site,
            coordinator,
            specialists,
            participants,
            start,
            duration_minutes: *duration_minutes,
            created_at,
            updated_at,
            started_at,
            ended_at,
            encoders,
            auto_admit: *auto_admit,
            sealed: sealed.as_ref(),
            patient_summary: patient.as_ref().map(|p| p.summary(today)),
        }
    }
}

/// The page of `query` among the consultations whose patient number is `number`, looking
/// through the newest `PATIENT_SEARCH_DEPTH` the caller may see.
async fn by_patient_number(
    st: &AppState,
    query: ConsultationQuery,
    number: &str,
) -> Result<crate::store::Page<Consultation>, AppError> {
    let mut scan = ConsultationQuery { ascending: false, offset: 0, limit: 200, ..query.clone() };
    let mut found = Vec::new();
    loop {
        let page = st.store.list_consultations(&scan).await?;
        found.extend(page.items.into_iter().filter(|c| {
            c.patient.as_ref().and_then(|p| p.number.as_deref()).is_some_and(|n| n.eq_ignore_ascii_case(number))
        }));
        match page.next_offset {
            Some(next) if next < PATIENT_SEARCH_DEPTH => scan.offset = next,
            _ => break,
        }
    }
    if query.ascending {
        found.reverse();
    }
    let total = found.len();
    let items: Vec<Consultation> = found.into_iter().skip(query.offset).take(query.limit).collect();
    let next = query.offset + items.len();
    Ok(crate::store::Page { items, total, next_offset: (next < total).then_some(next) })
}

async fn get_one(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
) -> Result<Json<Consultation>, AppError> {
    Ok(Json(load_visible(&st, &s, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    specialists: Vec<UserId>,
    start: Timestamp,
    duration_minutes: u32,
    #[serde(default)]
    recording: Option<RecordingPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RescheduleBody {
    start: Timestamp,
    duration_minutes: u32,
    #[serde(default)]
    specialists: Option<Vec<UserId>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecialistsBody {
    specialists: Vec<UserId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantsBody {
    participants: Vec<UserId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpinionBody {
    text: String,
    #[serde(default)]
    sign: bool,
    /// Signing asks for the signer's password again (issue 15).
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    auto_admit: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

fn body<T: for<'de> Deserialize<'de>>(raw: &axum::body::Bytes) -> Result<T, AppError> {
    // Steps without parameters accept an empty body as `{}`.
    if raw.iter().all(u8::is_ascii_whitespace) {
        return super::parse_json(&axum::body::Bytes::from_static(b"{}"));
    }
    super::parse_json(raw)
}

/// `POST /v1/consultations/{id}/{action}`: one lifecycle step.
async fn act(
    State(st): State<AppState>,
    s: Session,
    Path((id, action)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    raw: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Consultation>, AppError> {
    let id = parse_cid(&id)?;
    let raw = raw.map_err(|e| super::unreadable_body(&e, st.config.limits.http_body_bytes))?;
    // Steps without parameters may come with no body at all, and then with no content type.
    if !raw.iter().all(u8::is_ascii_whitespace) {
        super::require_json(&headers)?;
    }
    let action = match action.as_str() {
        "accept" => {
            let b: AcceptBody = body(&raw)?;
            check_users(&st, "specialists", &b.specialists, Some(Role::Specialist)).await?;
            Action::Accept {
                specialists: b.specialists,
                start: b.start,
                duration_minutes: b.duration_minutes,
                recording: b.recording,
            }
        }
        "reject" => Action::Reject { reason: body::<ReasonBody>(&raw)?.reason },
        "reschedule" => {
            let b: RescheduleBody = body(&raw)?;
            if let Some(sp) = &b.specialists {
                check_users(&st, "specialists", sp, Some(Role::Specialist)).await?;
            }
            Action::Reschedule { start: b.start, duration_minutes: b.duration_minutes, specialists: b.specialists }
        }
        "assign" => {
            let b: SpecialistsBody = body(&raw)?;
            check_users(&st, "specialists", &b.specialists, Some(Role::Specialist)).await?;
            Action::Assign { specialists: b.specialists }
        }
        "invite" => {
            let b: ParticipantsBody = body(&raw)?;
            check_users(&st, "participants", &b.participants, None).await?;
            Action::Invite { participants: b.participants }
        }
        "cancel" => Action::Cancel { reason: body::<ReasonBody>(&raw)?.reason },
        "start" => {
            body::<Empty>(&raw)?;
            Action::Start
        }
        "end" => {
            body::<Empty>(&raw)?;
            Action::End
        }
        "no_show" => {
            body::<Empty>(&raw)?;
            Action::NoShow
        }
        "opinion" => {
            let b: OpinionBody = body(&raw)?;
            if b.sign {
                confirm_password(&st, &s, &id, b.password).await?;
            }
            Action::Opinion { text: b.text, sign: b.sign }
        }
        "plan" => Action::Plan { text: body::<PlanBody>(&raw)?.text },
        "settings" => Action::Settings { auto_admit: body::<SettingsBody>(&raw)?.auto_admit },
        _ => {
            return Err(AppError::not_found("no_such_endpoint", "no such consultation action"));
        }
    };
    let ends = matches!(action, Action::End);
    // A reschedule may replace specialists, the lead (host) among them: their open sockets
    // must lose what the record no longer gives them.
    let before = match action {
        Action::Reschedule { .. } => st.store.get_consultation(&id).await?,
        _ => None,
    };
    // A signed opinion carries the server's signature from the moment it is signed.
    let signer = s.user.clone();
    let key = &st.report_key;
    let sign = move |c: &mut Consultation| {
        let fresh =
            c.opinions.iter().position(|o| o.author == signer.id && o.signed_at.is_some() && o.signature.is_none());
        if let Some(i) = fresh {
            c.opinions[i].signature = key.sign(c, &c.opinions[i], &signer.display_name);
        }
    };
    let c =
        service::transition_then(&st.store, &st.rules, &st.metrics, &st.events, &id, &s.actor(), action, &sign).await?;
    if ends {
        st.hub.end_room(&c.id, s.user.id.as_str()).await;
    }
    if let Some(before) = before {
        for (user, most) in crate::consult::rights::shrunk(&before, &c) {
            st.hub.revise(&c.id, user.as_str(), most).await;
        }
    }
    Ok(Json(c))
}

/// The signer's password, asked again before a signature: a session left open on a ward PC
/// must not sign an opinion. Failures share the sign-in throttle.
async fn confirm_password(
    st: &AppState,
    s: &Session,
    id: &ConsultationId,
    password: Option<String>,
) -> Result<(), AppError> {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Err(AppError::field(
            "password_required",
            "password",
            json!({}),
            "signing an opinion asks for your password again",
        ));
    };
    if password.len() > crate::auth::password::MAX_LEN {
        return Err(AppError::forbidden("invalid_credentials", "the password is wrong"));
    }
    let key = s.user.username.to_lowercase();
    let now = std::time::Instant::now();
    if !st.login_limiter.take(&key, now).await {
        return Err(AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many wrong passwords; wait a minute",
        ));
    }
    if st.passwords.verify(password, s.user.password_hash.clone()).await? {
        st.login_limiter.give_back(&key, now).await;
        return Ok(());
    }
    st.audit
        .record(AuditEntry::new(s.user.id.as_str(), "auth.sign_password_failed", Timestamp::now()).consultation(id));
    Err(AppError::forbidden("invalid_credentials", "the password is wrong"))
}

/// Everyone involved reads the report; the consultation centre too.
async fn report(State(st): State<AppState>, s: Session, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    let c = load_visible(&st, &s, &id).await?;
    let mut people = Vec::new();
    for u in c.involved_users() {
        if let Some(u) = st.store.get_user(&u).await? {
            people.push(UserView::from(&u));
        }
    }
    let site = match &c.requester_site {
        Some(id) => st.store.get_site(id).await?,
        None => None,
    };
    Ok(Json(json!({ "consultation": c, "people": people, "requester_site": site })))
}

/// A room token for a participant, only inside the join window.
async fn join(State(st): State<AppState>, s: Session, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    let id = parse_cid(&id)?;
    let c = st.store.get_consultation(&id).await?.ok_or_else(not_found)?;
    if !c.involves(&s.user.id) {
        return Err(if s.user.role == Role::Coordinator {
            AppError::forbidden("not_participant", "you are not a participant of this consultation")
        } else {
            not_found()
        });
    }
    let now = Timestamp::now();
    join_window(&st, &c, now)?;
    let grants = crate::consult::rights::room_grants(&c, &s.user).ok_or_else(not_found)?;
    let ttl = st.config.auth.room_token_ttl_secs;
    let (token, expires_at) = st.keys.user_room(s.user.id.as_str(), &s.user.display_name, &c.id, grants, ttl, now)?;
    let home = home_node(&st, &c.id).await?;
    st.audit.record(AuditEntry::new(s.user.id.as_str(), "consultation.join_token", now).consultation(&c.id));
    Ok(Json(joined(&st, &c, s.user.id.as_str(), grants, (token, expires_at), now, home)))
}

/// The node that holds (or now will hold) the consultation's room, when there are several.
pub(super) async fn home_node(
    st: &AppState,
    id: &crate::ids::ConsultationId,
) -> Result<Option<crate::rtc::router::Node>, AppError> {
    use crate::rtc::router::Home;
    Ok(match st.router.home(id).await? {
        Home::Here(node) => node,
        Home::Elsewhere(node) => Some(node),
    })
}

/// What `/join` (and a guest's join) answers: the room token and how to reach the room.
pub(super) fn joined(
    st: &AppState,
    c: &Consultation,
    identity: &str,
    grants: crate::auth::Grants,
    (token, expires_at): (String, Timestamp),
    now: Timestamp,
    home: Option<crate::rtc::router::Node>,
) -> Value {
    let mut answer = json!({
        "token": token,
        "expires_at": expires_at,
        "room": c.id,
        "identity": identity,
        "grants": grants,
        "signaling_path": "/v1/rtc",
        "ice_servers": ice_servers(&st.config.media, identity, now),
        "protocol_version": crate::rtc::protocol::PROTOCOL_VERSION,
    });
    // Several nodes: the socket, and so the media, go to the room's home.
    if let Some(node) = home {
        let ws = node.url.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        answer["signaling_url"] = json!(format!("{ws}/v1/rtc"));
        answer["node"] = json!(node);
    }
    answer
}

/// Room tokens are handed out only while the room is open: from `join_early_minutes` before
/// the start to the end of the slot, or while live.
pub(super) fn join_window(st: &AppState, c: &Consultation, now: Timestamp) -> Result<(), AppError> {
    match c.status {
        Status::Live => {}
        Status::Scheduled => {
            let (start, end) = c.slot().ok_or_else(AppError::internal)?;
            let opens_at = start - SignedDuration::from_mins(i64::from(st.rules.join_early_minutes));
            if now < opens_at {
                return Err(AppError::forbidden("join_window_not_open", "the consultation room is not open yet")
                    .with_details(json!({ "opens_at": opens_at, "start": start })));
            }
            if now >= end {
                return Err(AppError::forbidden("join_window_closed", "the time for this consultation has passed"));
            }
        }
        Status::Requested => {
            return Err(AppError::forbidden("join_window_not_open", "the consultation has not been scheduled yet"));
        }
        _ => {
            return Err(AppError::forbidden("join_window_closed", "this consultation is over")
                .with_details(json!({ "status": c.status })));
        }
    }
    Ok(())
}

/// STUN and TURN servers for the client, TURN with credentials valid for `turn_ttl_secs`.
pub(super) fn ice_servers(m: &crate::config::MediaConfig, identity: &str, now: Timestamp) -> Value {
    let mut out = Vec::new();
    if !m.stun_urls.is_empty() {
        out.push(json!({ "urls": m.stun_urls }));
    }
    if !m.turn_urls.is_empty() {
        let expires = now.as_second() + m.turn_ttl_secs as i64;
        let (username, credential) = crate::auth::turn::credentials(&m.turn_secret, identity, expires);
        out.push(json!({ "urls": m.turn_urls, "username": username, "credential": credential }));
    }
    Value::Array(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookingQuery {}

/// A specialist's busy slots (ids and times only), for the coordinator's calendar.
async fn bookings(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiQuery(_q): ApiQuery<BookingQuery>,
) -> Result<Json<Value>, AppError> {
    let id = UserId::parse(&id).ok_or_else(|| AppError::not_found("user_not_found", "no such user"))?;
    if s.user.id != id {
        s.require(&[Role::Coordinator, Role::Admin])?;
    }
    Ok(Json(json!({ "items": st.store.bookings(&id).await? })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A list item is the record without its clinical text and links, as it was when the list
    /// was made by removing those keys from the record's JSON (the wire format is unchanged).
    #[test]
    fn a_list_item_is_the_record_without_its_clinical_text() {
        let record = json!({
            "id": "0195f2c4a1b27c3e9d4f5a6b7c8d9e0f", "version": 3, "kind": "consultation",
            "specialty": "cardiology", "urgency": "routine", "number": "HZ-2026-000042",
            "summary": "胸痛3小时", "wished": null, "recording": "allowed", "status": "scheduled",
            "requester": "0195f2b0c3d47e1f8a9b0c1d2e3f4a5b", "requester_site": null,
            "coordinator": "0195f2b1aa017c22b3c4d5e6f7a8b9c0",
            "specialists": ["0195f2b1bb127d33c4d5e6f7a8b9c0d1"],
            "participants": ["0195f2b0c3d47e1f8a9b0c1d2e3f4a5b", "0195f2b1bb127d33c4d5e6f7a8b9c0d1"],
            "start": "2026-03-05T02:00:00Z", "duration_minutes": 30, "reason": null,
            "opinions": [], "plan": null,
            "created_at": "2026-03-04T08:00:00Z", "updated_at": "2026-03-04T09:00:00Z",
            "started_at": null, "ended_at": null, "auto_admit": true
        });
        let c: Consultation = serde_json::from_value(record).unwrap();
        let today = jiff::civil::date(2026, 3, 5);
        let mut before = serde_json::to_value(&c).unwrap();
        let o = before.as_object_mut().unwrap();
        for k in ["summary", "opinions", "plan", "reason", "patient", "guests", "attachments", "referrals"] {
            o.remove(k);
        }
        assert_eq!(serde_json::to_value(ListItem::of(&c, today)).unwrap(), before);
        let without_number = Consultation { number: None, ..c };
        let mut before = serde_json::to_value(&without_number).unwrap();
        let o = before.as_object_mut().unwrap();
        for k in ["summary", "opinions", "plan", "reason", "patient", "guests", "attachments", "referrals"] {
            o.remove(k);
        }
        assert_eq!(serde_json::to_value(ListItem::of(&without_number, today)).unwrap(), before);
    }
}
