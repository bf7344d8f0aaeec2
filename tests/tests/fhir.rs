//! The FHIR R4 export (issue 15) validated against the official definitions: a whole
//! consultation (patient, request, slot, call, signed opinion, plan, an attachment, a referral
//! up and back down) read resource by resource and as Patient/$everything, a search, and the
//! CapabilityStatement, each checked by `tests/fhir/validate.py` (fhir.resources, generated
//! from FHIR 4.0.1). scripts/test.sh makes its Python environment; without it this test fails.
#![allow(clippy::unwrap_used)]

use huizhen_tests::TestServer;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

fn validator() -> std::path::PathBuf {
    let python = std::env::var("FHIR_VALIDATOR_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fhir-venv/bin/python"));
    assert!(
        python.exists(),
        "the FHIR validator's Python ({}) is missing: run scripts/test.sh, which makes it",
        python.display()
    );
    python
}

#[tokio::test]
async fn the_fhir_export_is_valid_r4() {
    let python = validator();
    let srv = TestServer::start().await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let spec = api.login("cardiologist").await;
    let cardio = api.user_id(&coord, "cardiologist").await;
    let patient = json!({ "name": "欧阳小明", "sex": "male", "birth_date": "1958-04-02", "number": "ZY-42",
        "chief_complaint": "胸闷气短三天", "history": "高血压十年", "diagnosis": "急性冠脉综合征？", "purpose": "明确诊断" });
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "urgent", "patient": patient });
    let c = api.post("/v1/consultations", &doctor, body).await.ok();
    let id = c["id"].as_str().unwrap().to_owned();
    let act = |a: &str| format!("/v1/consultations/{id}/{a}");
    let start = (Timestamp::now() + SignedDuration::from_mins(5)).to_string();
    api.post(&act("accept"), &coord, json!({ "specialists": [cardio], "start": start, "duration_minutes": 30 }))
        .await
        .ok();
    api.post(&act("start"), &spec, json!({})).await.ok();
    let pdf = b"%PDF-1.4\n%%EOF\n".to_vec();
    api.raw("POST", &format!("/v1/consultations/{id}/attachments?name=ecg.pdf"), Some(&doctor), "application/pdf", pdf)
        .await
        .ok();
    let opinion = json!({ "text": "建议冠脉造影", "sign": true, "password": huizhen_tests::DEMO_PASSWORD });
    api.post(&act("opinion"), &spec, opinion).await.ok();
    api.post(&act("end"), &spec, json!({})).await.ok();
    api.post(&act("plan"), &doctor, json!({ "text": "转上级医院行PCI" })).await.ok();
    let sites = api.get("/v1/sites", &coord).await.ok();
    let city = sites["items"].as_array().unwrap().iter().find(|s| s["level"] == "city").unwrap()["id"].clone();
    let c = api
        .post(&act("referrals"), &doctor, json!({ "to_site": city, "department": "心内科", "reason": "PCI" }))
        .await
        .ok();
    let rid = c["referrals"][0]["id"].as_str().unwrap().to_owned();
    let step = |s: &str| format!("/v1/consultations/{id}/referrals/{rid}/{s}");
    api.post(&step("accept"), &coord, json!({ "planned_date": "2031-01-05" })).await.ok();
    api.post(&step("admit"), &coord, json!({})).await.ok();
    api.post(&step("discharge"), &coord, json!({ "instructions": "两周后复查" })).await.ok();

    // Each read, the whole, a search and the statement, saved for the validator.
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut save = |name: &str, v: &Value| {
        let p = dir.path().join(format!("{name}.json"));
        std::fs::write(&p, v.to_string()).unwrap();
        files.push(p);
    };
    let everything = api.get(&format!("/v1/fhir/r4/Patient/{id}/$everything"), &doctor).await.ok();
    let kinds: Vec<&str> = everything["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    for want in [
        "Patient",
        "ServiceRequest",
        "Appointment",
        "Encounter",
        "DiagnosticReport",
        "CarePlan",
        "DocumentReference",
        "Practitioner",
        "Organization",
    ] {
        assert!(kinds.contains(&want), "{want} in $everything: {kinds:?}");
    }
    assert_eq!(
        kinds.iter().filter(|k| **k == "ServiceRequest").count(),
        3,
        "the request, the referral up and the one back down"
    );
    save("everything", &everything);
    for e in everything["entry"].as_array().unwrap() {
        let r = &e["resource"];
        let url = format!("/v1/fhir/r4/{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        if r["resourceType"] == "DocumentReference" || (r["resourceType"] == "ServiceRequest" && r["id"] != id.as_str())
        {
            continue; // Found in their consultation's bundle, not read on their own.
        }
        let one = api.get(&url, &doctor).await.ok();
        assert_eq!(&one, r, "{url} reads as in the bundle");
        save(&format!("read-{}", r["resourceType"].as_str().unwrap()), &one);
    }
    let found = api.get("/v1/fhir/r4/ServiceRequest?patient-identifier=zy-42&status=active", &doctor).await.ok();
    assert_eq!(found["total"], 0, "the consultation is completed");
    let found =
        api.get("/v1/fhir/r4/ServiceRequest?patient-identifier=zy-42&authored=ge2026-01-01", &doctor).await.ok();
    assert_eq!(found["total"], 1);
    save("search", &found);
    save("metadata", &api.get("/v1/fhir/r4/metadata", &doctor).await.ok());
    api.get("/v1/fhir/r4/ServiceRequest?authored=soon", &doctor).await.expect(422, "fhir_search_invalid");
    let west = api.login("doctor-west").await;
    api.get(&format!("/v1/fhir/r4/Patient/{id}"), &west).await.expect(404, "fhir_not_found");
    srv.stop().await;

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fhir/validate.py");
    let out = std::process::Command::new(python).arg(script).args(&files).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{}", report.lines().last().unwrap_or(""));
}
