//! `huizhen adopt-recordings`: a node taken out of service hands its recordings to this one.
//! The operator copies (or mounts) the old node's recordings directory here; each recording is
//! checked against its manifest with this node's key and moved into this node's recordings
//! (huizhen_recorder::adopt), audited, and, with several nodes, Redis is told that this node
//! now holds the consultation's recordings instead of the old one, so every node's list and
//! downloads find them here.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use huizhen_recorder::adopt::Adopted;

use crate::config::Config;
use crate::ids::ConsultationId;
use crate::store::{AuditEntry, DynStore};

/// What happened, a line per recording, and how many were refused.
pub struct Report {
    pub lines: Vec<String>,
    pub refused: usize,
}

/// Moves the recordings under `from`. `retired_url`: the old node's `node.public_url`, whose
/// entries Redis drops for the consultations moved (required when this node is one of
/// several: otherwise the old entry would keep being asked for, and named unreachable).
pub async fn adopt(config: &Config, store: DynStore, from: &Path, retired_url: Option<&str>) -> anyhow::Result<Report> {
    // As Redis has it: `node.public_url` is refused with a trailing `/` (config.rs), so one
    // typed here would match no entry and leave the old one named unreachable.
    let retired_url = retired_url.map(|u| u.trim_end_matches('/'));
    let cluster = if config.store == "embedded" || config.node.public_url.is_empty() {
        None
    } else {
        let Some(retired) = retired_url else {
            anyhow::bail!(
                "this node is one of several (node.public_url is set): say which node the recordings come from with --retired-url <its node.public_url>"
            );
        };
        if retired == config.node.public_url {
            anyhow::bail!("--retired-url is this node's own URL");
        }
        let lease = std::time::Duration::from_secs(config.node.lease_secs);
        Some(Arc::new(crate::rtc::router::RedisRouter::connect(
            &config.store,
            &config.redis_prefix,
            &config.node.public_url,
            lease,
        )?))
    };
    if !from.is_dir() {
        anyhow::bail!("{} is not a directory (the old node's data_dir/recordings)", from.display());
    }
    let recorder = crate::recorder_for(config);
    if from.canonicalize()? == recorder.config().root.canonicalize().unwrap_or_default() {
        anyhow::bail!("{} is this node's own recordings directory", from.display());
    }
    let src = from.to_owned();
    let done = tokio::task::spawn_blocking(move || recorder.adopt(&src)).await?;

    let mut lines = Vec::new();
    let mut refused = 0;
    // A consultation is handed over in Redis only when all its recordings are here.
    let mut whole: BTreeMap<String, bool> = BTreeMap::new();
    for a in &done {
        let what = format!("{}/{}", a.consultation, a.recording);
        let ok = match &a.result {
            Ok(Adopted::Moved { files, bytes }) => {
                lines.push(format!("moved         {what}  ({files} files, {bytes} bytes, checked)"));
                let mut e = AuditEntry::new("system:cli", "recording.adopted", jiff::Timestamp::now())
                    .target(a.recording.clone());
                e.consultation = ConsultationId::parse(&a.consultation);
                store.append_audit(&e).await?;
                true
            }
            Ok(Adopted::AlreadyHere) => {
                lines.push(format!("already here  {what}"));
                true
            }
            Err(e) => {
                refused += 1;
                let why = match e {
                    huizhen_recorder::Error::Busy => {
                        "unfinished (a crash stopped it): start huizhen once on that data directory, with the key it was recorded with, so its start-up finishes it; then run this again".to_owned()
                    }
                    huizhen_recorder::Error::Decrypt | huizhen_recorder::Error::KeyNeeded => {
                        "does not decrypt with this node's recording.encryption_key: configure the key it was recorded with".to_owned()
                    }
                    other => other.to_string(),
                };
                lines.push(format!("refused       {what}: {why}"));
                false
            }
        };
        let entry = whole.entry(a.consultation.clone()).or_insert(true);
        *entry &= ok;
    }
    if let (Some(cluster), Some(retired)) = (&cluster, retired_url) {
        for (consultation, all_here) in &whole {
            if *all_here {
                cluster.adopt_recordings(consultation, retired).await?;
            } else {
                lines.push(format!(
                    "kept          {consultation}: still listed as held by {retired} until every recording of it is moved"
                ));
            }
        }
    }
    Ok(Report { lines, refused })
}
