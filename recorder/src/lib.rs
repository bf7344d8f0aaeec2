//! The recorder: a hidden subscriber of a room (an SFU tap, so the media path is the one the
//! participants' down-tracks use) that writes every track to a crash-safe capture file and,
//! when the recording stops (or at start-up, for captures a crash left behind), turns the
//! captures into one WebM per participant, an optional ffmpeg composite, and a manifest with
//! each file's SHA-256. Knows nothing of HTTP, JSON Web Tokens or the signaling protocol.
//!
//! On disk, under the recordings root:
//! `<consultation>/<recording>/recording.json` (state), `captures/*.cap` (while capturing),
//! `files/*.webm` and `manifest.json` (once finalised).

pub mod adopt;
pub mod capture;
pub mod crypt;
pub mod depack;
pub mod finalise;
mod layout;
mod session;
#[cfg(test)]
mod testing;
pub mod webm;

pub use finalise::{FileEntry, Manifest, TrackEntry};
pub use layout::{RecordingMeta, RecordingState};
pub use session::{Active, Recorder, RecorderConfig, RecorderEvent};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("the disk is full (or the recording reached its size limit)")]
    DiskFull,
    #[error("damaged file: {0}")]
    Corrupt(String),
    #[error("the recording key must be 64 hex digits (32 bytes)")]
    BadKey,
    #[error("this file is encrypted and no recording key is configured")]
    KeyNeeded,
    #[error("this file does not decrypt with the configured key")]
    Decrypt,
    #[error("not an encrypted file")]
    NotSealed,
    #[error("codec {0} is not recorded")]
    UnsupportedCodec(String),
    #[error("no such recording or file")]
    NotFound,
    #[error("the recording is still being captured or finalised")]
    Busy,
    #[error("a different recording with this id is already here")]
    Exists,
    #[error("the room's media is unavailable: {0}")]
    Media(String),
}

impl Error {
    /// Stable codes for the protocol and the API.
    pub fn code(&self) -> &'static str {
        match self {
            Error::DiskFull => "disk_full",
            Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => "disk_full",
            Error::Io(_) => "storage_error",
            Error::NotFound => "recording_not_found",
            Error::Busy => "recording_busy",
            Error::Media(_) => "media_unavailable",
            _ => "recording_error",
        }
    }

    pub(crate) fn from_io(e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::StorageFull { Error::DiskFull } else { Error::Io(e) }
    }
}
