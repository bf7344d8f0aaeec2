//! Signed opinions, checked (issue 15): the public keys anyone may fetch, and the check of one
//! consultation's signatures for whoever may read it. `huizhen verify-report` does the same
//! with a saved report and the published keys, without the server.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::Session;
use super::consultations::load_visible;
use crate::auth::report_key::{Verdict, verify_with};
use crate::consult::model::Consultation;
use crate::error::AppError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/signing-keys", get(keys)).route("/consultations/{id}/verify", get(verify))
}

/// `GET /v1/signing-keys`: public, so that a hospital system can check a report on its own.
async fn keys(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "keys": [st.report_key.public()] }))
}

/// Each signed opinion's verdict, and whether all of them hold.
pub fn verdicts(keys: &[crate::auth::report_key::PublicKey], c: &Consultation) -> Value {
    let opinions: Vec<Value> = c
        .opinions
        .iter()
        .map(|o| {
            let s = o.signature.as_ref();
            json!({
                "author": o.author,
                "signed_at": o.signed_at,
                "key_id": s.map(|s| &s.key_id),
                "fingerprint": s.map(|s| &s.fingerprint),
                "verdict": verify_with(keys, c, o),
            })
        })
        .collect();
    // Valid: at least one opinion carries a signature, and every signature holds. Opinions
    // signed before signatures existed (a time, no signature) are counted apart: they can be
    // neither confirmed nor refuted, and do not make a later report fail.
    let signed: Vec<_> = c.opinions.iter().filter(|o| o.signature.is_some()).collect();
    let unsigned = c.opinions.iter().filter(|o| o.signed_at.is_some() && o.signature.is_none()).count();
    let valid = !signed.is_empty() && signed.iter().all(|o| verify_with(keys, c, o) == Verdict::Valid);
    json!({
        "consultation": c.id,
        "number": c.number,
        "signed": signed.len(),
        "signed_without_signature": unsigned,
        "valid": valid,
        "opinions": opinions,
    })
}

/// `GET /v1/consultations/{id}/verify`
async fn verify(State(st): State<AppState>, s: Session, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    let c = load_visible(&st, &s, &id).await?;
    Ok(Json(verdicts(&[st.report_key.public()], &c)))
}
