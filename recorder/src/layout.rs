//! Where a recording lives and the small state file that says how far it got. Every write
//! of state is atomic (temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves either the old state or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    Capturing,
    /// Capture stopped; files not (all) written yet. Start-up finishes these.
    Finalising,
    Complete,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordingMeta {
    pub id: String,
    pub consultation: String,
    pub state: RecordingState,
    pub started_at: jiff::Timestamp,
    pub started_by: String,
    #[serde(default)]
    pub stopped_at: Option<jiff::Timestamp>,
    #[serde(default)]
    pub stopped_by: Option<String>,
    /// Participants whose media is not in the recording (they declined).
    #[serde(default)]
    pub excluded: Vec<String>,
    pub encrypted: bool,
    /// Why capture stopped early (disk full, write error), if it did.
    #[serde(default)]
    pub failure: Option<String>,
}

/// Ids become directory names: only what ids are made of (letters, digits, `-`, `_`).
pub fn safe_name(s: &str) -> Option<&str> {
    let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(s)
}

pub fn recording_dir(root: &Path, consultation: &str, recording: &str) -> Result<PathBuf, Error> {
    let c = safe_name(consultation).ok_or(Error::NotFound)?;
    let r = safe_name(recording).ok_or(Error::NotFound)?;
    Ok(root.join(c).join(r))
}

pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().ok_or(Error::NotFound)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(Error::from_io)?;
        f.write_all(bytes).map_err(Error::from_io)?;
        f.sync_all().map_err(Error::from_io)?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

pub fn write_meta(dir: &Path, meta: &RecordingMeta) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(meta).map_err(|e| Error::Corrupt(e.to_string()))?;
    write_atomic(&dir.join("recording.json"), &json)
}

pub fn read_meta(dir: &Path) -> Result<RecordingMeta, Error> {
    let bytes = std::fs::read(dir.join("recording.json")).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound,
        _ => Error::Io(e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(e.to_string()))
}

/// Every recording directory under `root` (consultation/recording), in no particular order.
pub fn all_recordings(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(cs) = std::fs::read_dir(root) else { return out };
    // Only consultations' directories: not `.adopting`, where recordings brought from another
    // node wait until they are checked (adopt.rs).
    for c in cs.flatten().filter(|c| c.file_name().to_str().and_then(safe_name).is_some()) {
        if let Ok(rs) = std::fs::read_dir(c.path()) {
            out.extend(rs.flatten().map(|r| r.path()).filter(|p| p.join("recording.json").exists()));
        }
    }
    out
}
