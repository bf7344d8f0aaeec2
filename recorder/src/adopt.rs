//! Recordings brought from another node's disk (a node taken out of service) into this
//! node's: each is copied into a staging directory beside the recordings, every file checked
//! against its manifest (size and SHA-256 as served, so decrypted with this node's key: a
//! recording this node could not serve is refused, not moved), made durable, and only then
//! renamed into place. The source is not changed. A recording a crash left unfinished there is
//! refused: a server started once on that data directory finishes it (start-up recovery).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::finalise::{Hashing, Manifest, hex, read_manifest};
use crate::layout::{self, RecordingState};
use crate::{Error, Recorder};

/// Where recordings wait while they are copied and checked: not a consultation's directory
/// (ids have no dot), so listing, recovery and the retention sweep never see them.
const STAGING: &str = ".adopting";

#[derive(Debug)]
pub struct Adoption {
    pub consultation: String,
    pub recording: String,
    pub result: Result<Adopted, Error>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Adopted {
    /// Copied, checked and in place.
    Moved { files: usize, bytes: u64 },
    /// This node already holds the same recording (a second run of the same move).
    AlreadyHere,
}

impl Recorder {
    /// Adopts every recording under `from` (another node's recordings root), one by one: a
    /// recording that fails is reported and left out, the others still move.
    pub fn adopt(&self, from: &Path) -> Vec<Adoption> {
        let mut dirs = layout::all_recordings(from);
        dirs.sort();
        dirs.into_iter()
            .map(|dir| {
                let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
                let consultation = dir.parent().map(name).unwrap_or_default();
                let recording = name(&dir);
                let result = self.adopt_one(&dir, &consultation, &recording);
                Adoption { consultation, recording, result }
            })
            .collect()
    }

    fn adopt_one(&self, src: &Path, consultation: &str, recording: &str) -> Result<Adopted, Error> {
        let meta = layout::read_meta(src)?;
        if meta.consultation != consultation || meta.id != recording {
            return Err(Error::Corrupt(format!(
                "recording.json names {}/{}, not the directory it is in",
                meta.consultation, meta.id
            )));
        }
        // Not finished here: finalising needs the captures' key, and a wrong one would turn
        // them into an empty recording. The node that made it finishes it at its start-up.
        if meta.state != RecordingState::Complete {
            return Err(Error::Busy);
        }
        let manifest = read_manifest(src)?;
        let dest = layout::recording_dir(&self.config().root, consultation, recording)?;
        if dest.exists() {
            return match read_manifest(&dest) {
                Ok(here) if here == manifest => Ok(Adopted::AlreadyHere),
                _ => Err(Error::Exists),
            };
        }
        let staging = self.config().root.join(STAGING).join(recording);
        // Left by a run that stopped half-way: never in place, so nothing refers to it.
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        let moved = self.copy_and_check(src, &staging, &manifest);
        let (files, bytes) = match moved {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let parent = dest.parent().ok_or(Error::NotFound)?;
        std::fs::create_dir_all(parent).map_err(Error::from_io)?;
        std::fs::rename(&staging, &dest)?;
        layout::sync_dir(parent)?;
        layout::sync_dir(&self.config().root)?;
        layout::sync_dir(&self.config().root.join(STAGING))?;
        Ok(Adopted::Moved { files, bytes })
    }

    /// Copies what a finished recording is (its state, its manifest, the files the manifest
    /// names; no leftover captures) into `to`, durable, and reads every file back through
    /// `open_in` against the manifest: (files, bytes as served).
    fn copy_and_check(&self, src: &Path, to: &Path, manifest: &Manifest) -> Result<(usize, u64), Error> {
        std::fs::create_dir_all(to.join("files")).map_err(Error::from_io)?;
        let mut copies: Vec<PathBuf> = vec!["recording.json".into(), "manifest.json".into()];
        copies.extend(manifest.files.iter().map(|f| Path::new("files").join(&f.name)));
        for rel in &copies {
            let mut from = std::fs::File::open(src.join(rel)).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::Corrupt(format!("{} is missing", rel.display())),
                _ => Error::Io(e),
            })?;
            let mut out = std::fs::File::create(to.join(rel)).map_err(Error::from_io)?;
            std::io::copy(&mut from, &mut out).map_err(Error::from_io)?;
            out.sync_all().map_err(Error::from_io)?;
        }
        layout::sync_dir(&to.join("files"))?;
        layout::sync_dir(to)?;
        let mut bytes = 0;
        for entry in &manifest.files {
            let mut reader = self.open_in(to, manifest, entry)?;
            // Hashed as finalising hashed it when it wrote the manifest.
            let mut read = Hashing { inner: std::io::sink(), hash: Sha256::new(), bytes: 0 };
            std::io::copy(&mut reader, &mut read).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => Error::Decrypt,
                _ => Error::Io(e),
            })?;
            if read.bytes != entry.bytes || hex(&read.hash.finalize()) != entry.sha256 {
                return Err(Error::Corrupt(format!("{} does not match its manifest", entry.name)));
            }
            bytes += read.bytes;
        }
        Ok((manifest.files.len(), bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    use crate::crypt::MasterKey;
    use crate::testing::{captured, recorder};

    fn served(r: &Recorder, c: &str, id: &str) -> Vec<u8> {
        let manifest = &r.list(c).unwrap()[0].1.clone().unwrap();
        let (mut reader, _) = r.open(c, id, &manifest.files[0].name).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_recording_moves_checked_once_and_is_served_as_before() {
        let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let key = MasterKey::new([4; 32]);
        captured(old.path(), "c1", "r1", Some(&key));
        let (there, here) = (recorder(old.path(), Some(key.clone())), recorder(new.path(), Some(key)));
        // Unfinished (a crash): refused, to be finished by a start-up on its own disk first.
        assert!(matches!(here.adopt(old.path())[0].result, Err(Error::Busy)));
        there.recover_blocking();

        let got = here.adopt(old.path());
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].consultation.as_str(), got[0].recording.as_str()), ("c1", "r1"));
        let Ok(Adopted::Moved { files: 1, bytes }) = got[0].result else { panic!("{got:?}") };
        let listed = here.list("c1").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].1, there.list("c1").unwrap()[0].1, "the same manifest");
        let media = served(&here, "c1", "r1");
        assert_eq!(media.len() as u64, bytes);
        assert_eq!(media, served(&there, "c1", "r1"));
        assert!(!new.path().join("c1/r1/captures").exists(), "no leftover captures copied");
        assert!(std::fs::read_dir(new.path().join(STAGING)).unwrap().next().is_none(), "staging emptied");

        // Run again: nothing copied twice.
        let again = here.adopt(old.path());
        assert!(matches!(again[0].result, Ok(Adopted::AlreadyHere)), "{again:?}");
    }

    #[test]
    fn what_this_node_could_not_serve_is_refused_and_nothing_is_left_half_done() {
        let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let key = MasterKey::new([4; 32]);
        captured(old.path(), "c1", "sealed", Some(&key));
        captured(old.path(), "c2", "damaged", None);
        captured(old.path(), "c3", "clash", None);
        // The sealed one finished with its key, the others unsealed (a node without a key).
        recorder(old.path(), None).recover_blocking_except("c1");
        recorder(old.path(), Some(key)).recover_blocking();
        // One file's bytes changed after its manifest was written.
        let damaged = old.path().join("c2/damaged/files");
        let file = std::fs::read_dir(&damaged).unwrap().next().unwrap().unwrap().path();
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, bytes).unwrap();
        // A different recording under the same id is already here.
        captured(new.path(), "c3", "clash", None);
        let here = recorder(new.path(), Some(MasterKey::new([5; 32])));
        here.recover_blocking();

        let got = here.adopt(old.path());
        let result = |id: &str| &got.iter().find(|a| a.recording == id).unwrap().result;
        assert!(matches!(result("sealed"), Err(Error::Decrypt)), "another key: {got:?}");
        assert!(matches!(result("damaged"), Err(Error::Corrupt(_))), "{got:?}");
        assert!(matches!(result("clash"), Err(Error::Exists)), "{got:?}");
        assert!(here.list("c1").unwrap().is_empty() && here.list("c2").unwrap().is_empty());
        assert_eq!(here.list("c3").unwrap().len(), 1, "the one here is untouched");
        let staged = new.path().join(STAGING);
        assert!(!staged.exists() || std::fs::read_dir(staged).unwrap().next().is_none());
    }

    impl Recorder {
        fn recover_blocking(&self) {
            self.recover_blocking_except("-");
        }

        fn recover_blocking_except(&self, consultation: &str) {
            for dir in layout::all_recordings(&self.config().root) {
                let done = layout::read_meta(&dir).unwrap().state == RecordingState::Complete;
                if !done && dir.parent().unwrap().file_name().unwrap() != consultation {
                    crate::finalise::finalise(&dir, &self.finalise_options()).unwrap();
                }
            }
        }
    }
}
