//! FHIR R4 (4.0.1) export, read-only (issue 15): what a hospital system asks of a
//! consultation, as JSON resources it already understands. One consultation is one patient
//! here (there is no master patient index): its `Patient`, the request as a `ServiceRequest`
//! (and each referral as another, `basedOn` it), the slot as an `Appointment`, the call as a
//! virtual `Encounter`, each signed opinion as a `DiagnosticReport`, the plan as a
//! `CarePlan`, each attachment as a `DocumentReference`, with the `Practitioner`s and
//! `Organization`s they name. We only write FHIR; the test validates it with a package
//! generated from the official definitions (`tests/fhir/validate.py`).
//!
//! The base URL is `/v1/fhir/r4`: the API's limits and headers apply.
//! Who may read: as the API's consultations (involved users and coordinators); everything is
//! patient data and goes out only over an authenticated request.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::consultations::load_visible;
use super::{ApiQuery, Session};
use crate::consult::model::{Consultation, Role, Status, Urgency, User};
use crate::consult::patient::Sex;
use crate::consult::referral::{Direction, RefStatus, Referral};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::ConsultationQuery;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/fhir/r4/metadata", get(metadata))
        .route("/fhir/r4/Patient/{id}/$everything", get(everything))
        .route("/fhir/r4/ServiceRequest", get(search))
        .route("/fhir/r4/{kind}/{id}", get(read))
}

/// FHIR's own media type: the JSON answers say so.
fn fhir(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/fhir+json; fhirVersion=4.0")], Json(v)).into_response()
}

fn reference(kind: &str, id: &str) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

const NUMBER_SYSTEM: &str = "urn:huizhen:report-number";

fn patient_number_system(c: &Consultation) -> String {
    format!("urn:huizhen:site:{}:patient-number", c.requester_site.as_ref().map(|s| s.as_str()).unwrap_or("unknown"))
}

fn patient(c: &Consultation) -> Option<Value> {
    let p = c.patient.as_ref()?;
    let gender = match p.sex {
        Sex::Male => "male",
        Sex::Female => "female",
        Sex::Unknown => "unknown",
    };
    let mut v = json!({
        "resourceType": "Patient",
        "id": c.id,
        "name": [{ "text": p.name }],
        "gender": gender,
        "birthDate": p.birth_date.to_string(),
    });
    if let Some(n) = &p.number {
        v["identifier"] = json!([{ "system": patient_number_system(c), "value": n }]);
    }
    if let Some(site) = &c.requester_site {
        v["managingOrganization"] = reference("Organization", site.as_str());
    }
    Some(v)
}

fn subject(c: &Consultation) -> Option<Value> {
    c.patient.as_ref().map(|_| reference("Patient", c.id.as_str()))
}

fn request_status(s: Status) -> &'static str {
    match s {
        Status::Requested | Status::Scheduled | Status::Live => "active",
        Status::Ended | Status::Reported => "completed",
        Status::Rejected | Status::Cancelled | Status::NoShow => "revoked",
    }
}

fn priority(u: Urgency) -> &'static str {
    match u {
        Urgency::Routine => "routine",
        Urgency::Urgent => "urgent",
        Urgency::Emergency => "stat",
    }
}

fn service_request(c: &Consultation) -> Value {
    let mut v = json!({
        "resourceType": "ServiceRequest",
        "id": c.id,
        "status": request_status(c.status),
        "intent": "order",
        "priority": priority(c.urgency),
        "code": { "text": match c.kind {
            crate::consult::model::Kind::Consultation => "远程会诊 remote consultation",
            crate::consult::model::Kind::CaseDiscussion => "病例讨论 case discussion",
            crate::consult::model::Kind::Teaching => "教学查房 teaching",
        } },
        "authoredOn": c.created_at.to_string(),
        "requester": reference("Practitioner", c.requester.as_str()),
    });
    // A request without a patient block has no subject to name: FHIR needs one, so it
    // points at a contained placeholder rather than at nothing.
    v["subject"] = subject(c).unwrap_or_else(|| json!({ "display": "unidentified" }));
    if let Some(n) = &c.number {
        v["identifier"] = json!([{ "system": NUMBER_SYSTEM, "value": n }]);
    }
    if !c.specialists.is_empty() {
        v["performer"] = Value::Array(c.specialists.iter().map(|s| reference("Practitioner", s.as_str())).collect());
    }
    let mut reasons = Vec::new();
    if let Some(p) = &c.patient {
        for t in [&p.chief_complaint, &p.diagnosis].into_iter().filter(|t| !t.is_empty()) {
            reasons.push(json!({ "text": t }));
        }
    }
    if !reasons.is_empty() {
        v["reasonCode"] = Value::Array(reasons);
    }
    let mut notes = Vec::new();
    if let Some(p) = &c.patient {
        for t in [&p.history, &p.purpose].into_iter().filter(|t| !t.is_empty()) {
            notes.push(json!({ "text": t }));
        }
    }
    if !c.summary.is_empty() {
        notes.push(json!({ "text": c.summary }));
    }
    if !notes.is_empty() {
        v["note"] = Value::Array(notes);
    }
    if let Some((start, end)) = c.slot() {
        v["occurrencePeriod"] = json!({ "start": start.to_string(), "end": end.to_string() });
    }
    v
}

fn referral_request(c: &Consultation, r: &Referral) -> Value {
    let status = match r.status {
        RefStatus::Requested | RefStatus::Accepted | RefStatus::Admitted => "active",
        RefStatus::Discharged | RefStatus::Received => "completed",
        RefStatus::Declined | RefStatus::Cancelled => "revoked",
    };
    let mut v = json!({
        "resourceType": "ServiceRequest",
        "id": r.id,
        "status": status,
        "intent": "order",
        "priority": priority(r.urgency),
        "category": [{ "text": match r.direction { Direction::Up => "上转 referral up", Direction::Down => "下转 referral down" } }],
        "code": { "text": r.department },
        "basedOn": [reference("ServiceRequest", c.id.as_str())],
        "authoredOn": r.requested_at.to_string(),
        "requester": reference("Practitioner", r.requested_by.as_str()),
        "performer": [reference("Organization", r.to_site.as_str())],
        "note": [{ "text": r.reason }],
    });
    v["subject"] = subject(c).unwrap_or_else(|| json!({ "display": "unidentified" }));
    if let Some(d) = r.planned_date {
        v["occurrenceDateTime"] = json!(d.to_string());
    }
    v
}

fn appointment(c: &Consultation) -> Option<Value> {
    let (start, end) = c.slot()?;
    let status = match c.status {
        Status::Requested => return None,
        Status::Scheduled => "booked",
        Status::Live | Status::Ended | Status::Reported => "fulfilled",
        Status::Rejected | Status::Cancelled => "cancelled",
        Status::NoShow => "noshow",
    };
    let mut participants =
        vec![json!({ "actor": reference("Practitioner", c.requester.as_str()), "status": "accepted" })];
    for s in &c.specialists {
        participants.push(json!({ "actor": reference("Practitioner", s.as_str()), "status": "accepted" }));
    }
    if let Some(p) = subject(c) {
        participants.push(json!({ "actor": p, "status": "accepted" }));
    }
    Some(json!({
        "resourceType": "Appointment",
        "id": c.id,
        "status": status,
        "start": start.to_string(),
        "end": end.to_string(),
        "minutesDuration": c.duration_minutes,
        "basedOn": [reference("ServiceRequest", c.id.as_str())],
        "participant": participants,
    }))
}

fn encounter(c: &Consultation) -> Option<Value> {
    let start = c.started_at?;
    let status = if c.ended_at.is_some() { "finished" } else { "in-progress" };
    let mut period = json!({ "start": start.to_string() });
    if let Some(end) = c.ended_at {
        period["end"] = json!(end.to_string());
    }
    let mut v = json!({
        "resourceType": "Encounter",
        "id": c.id,
        "status": status,
        "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual" },
        "basedOn": [reference("ServiceRequest", c.id.as_str())],
        "period": period,
        "participant": c.specialists.iter().chain(std::iter::once(&c.requester))
            .map(|u| json!({ "individual": reference("Practitioner", u.as_str()) }))
            .collect::<Vec<_>>(),
    });
    if let Some(s) = subject(c) {
        v["subject"] = s;
    }
    Some(v)
}

fn reports(c: &Consultation) -> Vec<Value> {
    c.opinions
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let signed = o.signed_at?;
            let mut v = json!({
                "resourceType": "DiagnosticReport",
                "id": format!("{}-{i}", c.id),
                "status": "final",
                "code": { "text": "会诊意见 consultation opinion" },
                "basedOn": [reference("ServiceRequest", c.id.as_str())],
                "issued": signed.to_string(),
                "performer": [reference("Practitioner", o.author.as_str())],
                "conclusion": o.text,
            });
            if let Some(s) = subject(c) {
                v["subject"] = s;
            }
            if c.started_at.is_some() {
                v["encounter"] = reference("Encounter", c.id.as_str());
            }
            if let Some(sig) = &o.signature {
                v["identifier"] =
                    json!([{ "system": format!("urn:huizhen:signature:{}", sig.key_id), "value": sig.fingerprint }]);
            }
            Some(v)
        })
        .collect()
}

fn care_plan(c: &Consultation) -> Option<Value> {
    let p = c.plan.as_ref()?;
    let mut v = json!({
        "resourceType": "CarePlan",
        "id": c.id,
        "status": "active",
        "intent": "plan",
        "description": p.text,
        "created": p.recorded_at.to_string(),
        "author": reference("Practitioner", p.author.as_str()),
    });
    v["subject"] = subject(c).unwrap_or_else(|| json!({ "display": "unidentified" }));
    if c.started_at.is_some() {
        v["encounter"] = reference("Encounter", c.id.as_str());
    }
    Some(v)
}

fn documents(c: &Consultation) -> Vec<Value> {
    c.attachments
        .iter()
        .map(|a| {
            let mut v = json!({
                "resourceType": "DocumentReference",
                "id": a.id,
                "status": "current",
                "date": a.uploaded_at.to_string(),
                "author": [reference("Practitioner", a.uploaded_by.as_str())],
                "identifier": [{ "system": "urn:ietf:rfc:6920", "value": format!("ni:///sha-256;{}", a.sha256) }],
                "content": [{ "attachment": {
                    "contentType": a.kind.content_type(),
                    "url": format!("/v1/consultations/{}/attachments/{}", c.id, a.id),
                    "size": a.size,
                    "title": a.name,
                    "creation": a.uploaded_at.to_string(),
                } }],
                "context": { "related": [reference("ServiceRequest", c.id.as_str())] },
            });
            if let Some(s) = subject(c) {
                v["subject"] = s;
            }
            v
        })
        .collect()
}

fn practitioner(u: &User) -> Value {
    json!({ "resourceType": "Practitioner", "id": u.id, "name": [{ "text": u.display_name }], "active": !u.disabled })
}

/// Every resource of one consultation, the people and places named included.
async fn all_of(st: &AppState, c: &Consultation) -> Result<Vec<Value>, AppError> {
    let mut out = Vec::new();
    out.extend(patient(c));
    out.push(service_request(c));
    out.extend(c.referrals.iter().map(|r| referral_request(c, r)));
    out.extend(appointment(c));
    out.extend(encounter(c));
    out.extend(reports(c));
    out.extend(care_plan(c));
    out.extend(documents(c));
    for u in c.involved_users() {
        if let Some(u) = st.store.get_user(&u).await? {
            out.push(practitioner(&u));
        }
    }
    let mut sites: Vec<_> = c.requester_site.iter().cloned().collect();
    for r in &c.referrals {
        sites.push(r.to_site.clone());
        sites.push(r.from_site.clone());
    }
    sites.sort();
    sites.dedup();
    for id in sites {
        if let Some(s) = st.store.get_site(&id).await? {
            out.push(json!({ "resourceType": "Organization", "id": s.id, "name": s.name, "active": true }));
        }
    }
    Ok(out)
}

fn bundle(base: &str, resources: Vec<Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let url = format!("{base}/{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
            json!({ "fullUrl": url, "resource": r, "search": { "mode": "match" } })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "timestamp": Timestamp::now().to_string(),
        "entry": entries,
    })
}

fn not_found() -> AppError {
    AppError::not_found("fhir_not_found", "no such resource, or it is not yours to see")
}

/// `GET /fhir/r4/{kind}/{id}`.
async fn read(
    State(st): State<AppState>,
    s: Session,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    // Opinions are `<consultation>-<n>`; referrals and attachments have their own ids and are
    // found in their consultation, which the caller must be able to read.
    let cid = id.split('-').next().unwrap_or(&id).to_owned();
    let found = match kind.as_str() {
        "Practitioner" | "Organization" => None,
        _ => load_visible(&st, &s, &cid).await.ok(),
    };
    let resource = match (kind.as_str(), found) {
        ("Patient", Some(c)) => patient(&c),
        ("ServiceRequest", Some(c)) => Some(service_request(&c)),
        ("Appointment", Some(c)) => appointment(&c),
        ("Encounter", Some(c)) => encounter(&c),
        ("CarePlan", Some(c)) => care_plan(&c),
        ("DiagnosticReport", Some(c)) => reports(&c).into_iter().find(|r| r["id"] == id.as_str()),
        ("Practitioner", _) => {
            let uid = crate::ids::UserId::parse(&id).ok_or_else(not_found)?;
            // Staff are seen by staff: no patient data in it.
            st.store.get_user(&uid).await?.map(|u| practitioner(&u))
        }
        ("Organization", _) => {
            let sid = crate::ids::SiteId::parse(&id).ok_or_else(not_found)?;
            st.store
                .get_site(&sid)
                .await?
                .map(|s| json!({ "resourceType": "Organization", "id": s.id, "name": s.name, "active": true }))
        }
        _ => None,
    };
    resource.map(fhir).ok_or_else(not_found)
}

/// `GET /fhir/r4/Patient/{id}/$everything`: every resource of the consultation.
async fn everything(State(st): State<AppState>, s: Session, Path(id): Path<String>) -> Result<Response, AppError> {
    let c = load_visible(&st, &s, &id).await.map_err(|_| not_found())?;
    if c.patient.is_none() {
        return Err(not_found());
    }
    let resources = all_of(&st, &c).await?;
    Ok(fhir(bundle("/v1/fhir/r4", resources)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    /// `ge2026-01-01`, `lt2026-02-01`… (one bound; `eq` or no prefix: that day).
    authored: Option<String>,
    /// `active`, `completed` or `revoked`.
    status: Option<String>,
    /// The requesting site's patient number.
    #[serde(rename = "patient-identifier")]
    patient_identifier: Option<String>,
    #[serde(rename = "_count")]
    count: Option<usize>,
}

/// `GET /fhir/r4/ServiceRequest?authored=&status=&patient-identifier=`: consultations (not
/// referrals) the caller may see, newest first, among the newest 5,000.
async fn search(
    State(st): State<AppState>,
    s: Session,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Response, AppError> {
    let bad = |m: &str| AppError::field("fhir_search_invalid", "query", json!({}), m.to_owned());
    let (from, to) = match q.authored.as_deref() {
        None => (None, None),
        Some(a) => {
            let (prefix, date) = a.split_at(a.find(|c: char| c.is_ascii_digit()).unwrap_or(0));
            let day: jiff::civil::Date =
                date.parse().map_err(|_| bad("authored is a date with an optional prefix (ge, gt, le, lt, eq)"))?;
            let at = |d: jiff::civil::Date| d.to_zoned(st.rules.time_zone.clone()).map(|z| z.timestamp()).ok();
            let next = day.tomorrow().ok().and_then(at);
            match prefix {
                "" | "eq" => (at(day), next),
                "ge" => (at(day), None),
                "gt" => (next, None),
                "lt" => (None, at(day)),
                "le" => (None, next),
                _ => return Err(bad("authored's prefix is ge, gt, le, lt or eq")),
            }
        }
    };
    if let Some(st) = q.status.as_deref()
        && !matches!(st, "active" | "completed" | "revoked")
    {
        return Err(bad("status is active, completed or revoked"));
    }
    let count = q.count.unwrap_or(50).clamp(1, 200);
    let everyone = s.user.role == Role::Coordinator;
    let mut scan = ConsultationQuery {
        involving: (!everyone).then(|| s.user.id.clone()),
        ascending: false,
        offset: 0,
        limit: 200,
        ..Default::default()
    };
    let mut found = Vec::new();
    'pages: loop {
        let page = st.store.list_consultations(&scan).await?;
        for c in page.items {
            let authored_ok = from.is_none_or(|f| c.created_at >= f) && to.is_none_or(|t| c.created_at < t);
            let status_ok = q.status.as_deref().is_none_or(|st| request_status(c.status) == st);
            let number_ok = q.patient_identifier.as_deref().is_none_or(|n| {
                c.patient.as_ref().and_then(|p| p.number.as_deref()).is_some_and(|m| m.eq_ignore_ascii_case(n))
            });
            if authored_ok && status_ok && number_ok {
                found.push(service_request(&c));
                if found.len() >= count {
                    break 'pages;
                }
            }
        }
        match page.next_offset {
            Some(next) if next < 5000 => scan.offset = next,
            _ => break,
        }
    }
    Ok(fhir(bundle("/v1/fhir/r4", found)))
}

/// `GET /fhir/r4/metadata`: what this server answers.
async fn metadata() -> Response {
    let read = |t: &str| json!({ "type": t, "interaction": [{ "code": "read" }] });
    let mut resources: Vec<Value> =
        ["Patient", "Appointment", "Encounter", "DiagnosticReport", "CarePlan", "Practitioner", "Organization"]
            .iter()
            .map(|t| read(t))
            .collect();
    resources[0]["operation"] =
        json!([{ "name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything" }]);
    // Attachments (DocumentReference) and referrals (ServiceRequest with their own ids) come
    // with their consultation, in Patient/$everything: no read of their own.
    resources.push(json!({ "type": "DocumentReference" }));
    resources.push(json!({
        "type": "ServiceRequest",
        "interaction": [{ "code": "read" }, { "code": "search-type" }],
        "searchParam": [
            { "name": "authored", "type": "date" },
            { "name": "status", "type": "token" },
            { "name": "patient-identifier", "type": "token", "documentation": "the requesting site's patient number (门诊号/住院号)" },
            { "name": "_count", "type": "number" }
        ]
    }));
    fhir(json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-06",
        "publisher": "Huizhen",
        "kind": "instance",
        "software": { "name": "Huizhen", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Huizhen telemedicine consultation server, read-only FHIR export" },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": { "description": "Authorization: Bearer <session token> from POST /v1/auth/login" },
            "resource": resources,
        }],
    }))
}
