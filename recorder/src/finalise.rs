//! Captures → one WebM per participant (audio and video on the sender's clock), an optional
//! ffmpeg composite, and `manifest.json`. Idempotent: run again after a crash it produces the
//! same result; the captures are deleted only once the manifest is durable.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypt::{MasterKey, SealingWriter};
use crate::depack::{Codec, TrackFrames};
use crate::layout::{self, RecordingState};
use crate::webm::{self, Block, TrackSpec};
use crate::{Error, capture};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackEntry {
    pub id: String,
    pub kind: String,
    pub codec: String,
    pub frames: u64,
    /// Frames left out because packets were lost (or were not captured before a crash).
    pub dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u16>,
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    /// `participant` (one person's audio and video) or `composite` (everyone, mixed).
    pub kind: String,
    pub participants: Vec<String>,
    pub tracks: Vec<TrackEntry>,
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
    pub duration_ms: u64,
    /// Size and SHA-256 of the media as served (decrypted when stored encrypted).
    pub bytes: u64,
    pub sha256: String,
    pub content_type: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub recording: String,
    pub consultation: String,
    pub started_at: jiff::Timestamp,
    pub started_by: String,
    pub stopped_at: Option<jiff::Timestamp>,
    pub stopped_by: Option<String>,
    pub participants: Vec<String>,
    pub excluded: Vec<String>,
    pub encrypted: bool,
    pub files: Vec<FileEntry>,
    /// What could not be recorded and why (an unsupported codec, a damaged capture).
    pub problems: Vec<String>,
    /// True when the recording was finished after a crash (its last second may be missing).
    pub recovered: bool,
    pub finalised_at: jiff::Timestamp,
}

#[derive(Clone, Debug)]
pub struct FinaliseOptions {
    pub key: Option<MasterKey>,
    /// Make the grid composite with ffmpeg when it is installed (not for encrypted recordings:
    /// ffmpeg would need the media in the clear on disk).
    pub composite: bool,
    pub ffmpeg: PathBuf,
}

fn ts(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Counts and hashes what passes through, on the way to the file.
pub(crate) struct Hashing<W: Write> {
    pub(crate) inner: W,
    pub(crate) hash: Sha256,
    pub(crate) bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.hash.update(&b[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes through `produce` into `path` (sealed when a key is set), durably, via a temporary
/// file; returns the plaintext size and SHA-256.
fn write_file(
    path: &Path,
    key: Option<&MasterKey>,
    produce: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(u64, String), Error> {
    let part = path.with_extension("part");
    let file = std::fs::File::create(&part).map_err(Error::from_io)?;
    let buffered = std::io::BufWriter::with_capacity(1 << 20, file);
    let (bytes, hash, file) = match key {
        Some(k) => {
            let mut h = Hashing {
                inner: SealingWriter::new(buffered, k).map_err(Error::from_io)?,
                hash: Sha256::new(),
                bytes: 0,
            };
            produce(&mut h).map_err(Error::from_io)?;
            let buffered = h.inner.finish().map_err(Error::from_io)?;
            (h.bytes, h.hash, buffered.into_inner().map_err(|e| Error::from_io(e.into_error()))?)
        }
        None => {
            let mut h = Hashing { inner: buffered, hash: Sha256::new(), bytes: 0 };
            produce(&mut h).map_err(Error::from_io)?;
            (h.bytes, h.hash, h.inner.into_inner().map_err(|e| Error::from_io(e.into_error()))?)
        }
    };
    file.sync_all().map_err(Error::from_io)?;
    std::fs::rename(&part, path)?;
    Ok((bytes, hex(&hash.finalize())))
}

struct ParticipantTracks {
    tracks: Vec<(capture::CaptureHeader, TrackFrames)>,
}

pub fn finalise(dir: &Path, opts: &FinaliseOptions) -> Result<Manifest, Error> {
    let mut meta = layout::read_meta(dir)?;
    let recovered = meta.state == RecordingState::Capturing;
    if meta.state != RecordingState::Finalising {
        meta.state = RecordingState::Finalising;
        layout::write_meta(dir, &meta)?;
    }
    let captures_dir = dir.join("captures");
    let mut problems = Vec::new();
    let mut by_participant: BTreeMap<String, ParticipantTracks> = BTreeMap::new();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&captures_dir) {
        Ok(rd) => rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "cap")).collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    for p in &paths {
        let cap = match capture::read(p, opts.key.as_ref()) {
            Ok(c) => c,
            // Sealed under a key this server does not have (the key was changed or removed
            // after a crash): stop here, captures kept and the recording left unfinished, so
            // a start with the right key finishes it. Going on would write it empty and delete
            // the captures.
            Err(e @ (Error::Decrypt | Error::KeyNeeded)) => return Err(e),
            Err(e) => {
                problems.push(format!("{}: {e}", p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
                continue;
            }
        };
        if meta.excluded.contains(&cap.header.participant) {
            continue;
        }
        match crate::depack::frames(&cap) {
            Ok(f) if f.frames.is_empty() => {}
            Ok(f) => by_participant
                .entry(cap.header.participant.clone())
                .or_insert_with(|| ParticipantTracks { tracks: Vec::new() })
                .tracks
                .push((cap.header, f)),
            Err(e) => problems.push(format!("{}: {e}", cap.header.track)),
        }
    }
    let files_dir = dir.join("files");
    std::fs::create_dir_all(&files_dir)?;
    let mut files = Vec::new();
    let mut composite_inputs = Vec::new();
    for (participant, pt) in &by_participant {
        let Some(name) = layout::safe_name(participant) else {
            problems.push("a participant id is not a safe file name".into());
            continue;
        };
        let name = format!("{name}.webm");
        let t0 = pt.tracks.iter().filter_map(|(_, f)| f.frames.first()).map(|f| f.wall_us).min().unwrap_or(0);
        let end_us = pt.tracks.iter().filter_map(|(_, f)| f.frames.last()).map(|f| f.wall_us).max().unwrap_or(t0);
        // Audio first: a player that finds the audio track first starts sound at once.
        let mut order: Vec<usize> = (0..pt.tracks.len()).collect();
        order.sort_by_key(|i| (pt.tracks[*i].1.codec != Codec::Opus, pt.tracks[*i].0.track.clone()));
        let specs: Vec<TrackSpec> = order
            .iter()
            .map(|i| {
                let f = &pt.tracks[*i].1;
                TrackSpec { codec: f.codec, width: f.width, height: f.height, channels: 2 }
            })
            .collect();
        let mut blocks: Vec<Block<'_>> = Vec::new();
        for (n, i) in order.iter().enumerate() {
            // Each sender report maps the clock a little differently (a few ms of jitter):
            // keep every track's times strictly increasing, as players require.
            let mut last = i64::MIN;
            for fr in &pt.tracks[*i].1.frames {
                let time_ms = ((fr.wall_us - t0) / 1000).max(last.saturating_add(1));
                last = time_ms;
                blocks.push(Block { track: n, time_ms, keyframe: fr.keyframe, data: &fr.data });
            }
        }
        blocks.sort_by_key(|b| b.time_ms);
        // The last frame lasts a frame: 20 ms of Opus or a 30 fps picture.
        let duration_ms = (end_us - t0) as f64 / 1000.0 + 20.0;
        let (bytes, sha256) =
            write_file(&files_dir.join(&name), opts.key.as_ref(), |w| webm::write(w, &specs, &blocks, duration_ms))?;
        let tracks = order
            .iter()
            .map(|i| {
                let (h, f) = &pt.tracks[*i];
                TrackEntry {
                    id: h.track.clone(),
                    kind: h.kind.clone(),
                    codec: h.codec.clone(),
                    frames: f.frames.len() as u64,
                    dropped: f.dropped,
                    width: (f.width > 0).then_some(f.width),
                    height: (f.height > 0).then_some(f.height),
                    start: ts(f.frames.first().map(|x| x.wall_us).unwrap_or(t0)),
                    end: ts(f.frames.last().map(|x| x.wall_us).unwrap_or(t0)),
                }
            })
            .collect();
        composite_inputs.push((
            files_dir.join(&name),
            t0,
            end_us,
            pt.tracks.iter().any(|(_, f)| f.codec == Codec::Vp8),
            pt.tracks.iter().any(|(_, f)| f.codec == Codec::Opus),
        ));
        files.push(FileEntry {
            name,
            kind: "participant".into(),
            participants: vec![participant.clone()],
            tracks,
            start: ts(t0),
            end: ts(end_us),
            duration_ms: duration_ms.round() as u64,
            bytes,
            sha256,
            content_type: "video/webm".into(),
        });
    }
    if opts.composite && opts.key.is_none() && composite_inputs.len() > 1 {
        match composite(&files_dir, &opts.ffmpeg, &composite_inputs) {
            Ok(Some(entry)) => {
                let mut entry = entry;
                entry.participants = by_participant.keys().cloned().collect();
                files.push(entry);
            }
            Ok(None) => {}
            Err(e) => problems.push(format!("composite: {e}")),
        }
    }
    let manifest = Manifest {
        recording: meta.id.clone(),
        consultation: meta.consultation.clone(),
        started_at: meta.started_at,
        started_by: meta.started_by.clone(),
        stopped_at: meta.stopped_at,
        stopped_by: meta.stopped_by.clone(),
        participants: by_participant.keys().cloned().collect(),
        excluded: meta.excluded.clone(),
        encrypted: opts.key.is_some(),
        files,
        problems,
        recovered,
        finalised_at: jiff::Timestamp::now(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Corrupt(e.to_string()))?;
    layout::write_atomic(&dir.join("manifest.json"), &json)?;
    meta.state = RecordingState::Complete;
    layout::write_meta(dir, &meta)?;
    // The files are the record now; the raw captures would only double the disk used.
    let _ = std::fs::remove_dir_all(&captures_dir);
    Ok(manifest)
}

pub fn read_manifest(dir: &Path) -> Result<Manifest, Error> {
    let bytes = std::fs::read(dir.join("manifest.json")).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound,
        _ => Error::Io(e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(e.to_string()))
}

/// A grid of everyone's video with everyone's audio mixed, each input placed at its own start.
fn composite(
    dir: &Path,
    ffmpeg: &Path,
    inputs: &[(PathBuf, i64, i64, bool, bool)],
) -> Result<Option<FileEntry>, Error> {
    if Command::new(ffmpeg).arg("-version").output().is_err() {
        return Ok(None);
    }
    let t0 = inputs.iter().map(|i| i.1).min().unwrap_or(0);
    let end = inputs.iter().map(|i| i.2).max().unwrap_or(t0);
    let videos: Vec<usize> = (0..inputs.len()).filter(|i| inputs[*i].3).collect();
    let audios: Vec<usize> = (0..inputs.len()).filter(|i| inputs[*i].4).collect();
    if videos.is_empty() {
        return Ok(None);
    }
    let cols = (videos.len() as f64).sqrt().ceil() as usize;
    let rows = videos.len().div_ceil(cols);
    let (w, h) = (640 / cols.max(1) * 2 / 2, 360 / rows.max(1) * 2 / 2);
    let mut filter = String::new();
    for (n, i) in videos.iter().enumerate() {
        filter.push_str(&format!(
            "[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=15[v{n}];"
        ));
    }
    if videos.len() == 1 {
        filter.push_str("[v0]null[v]");
    } else {
        let layout: Vec<String> = (0..videos.len()).map(|n| format!("{}_{}", (n % cols) * w, (n / cols) * h)).collect();
        for n in 0..videos.len() {
            filter.push_str(&format!("[v{n}]"));
        }
        filter.push_str(&format!("xstack=inputs={}:layout={}:fill=black[v]", videos.len(), layout.join("|")));
    }
    if !audios.is_empty() {
        filter.push(';');
        for i in &audios {
            filter.push_str(&format!("[{i}:a]"));
        }
        filter.push_str(&format!("amix=inputs={}:normalize=0[a]", audios.len()));
    }
    let out = dir.join("composite.webm");
    let part = dir.join("composite.part.webm");
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-v", "error", "-y", "-nostdin"]);
    for (path, start, _, _, _) in inputs {
        cmd.arg("-itsoffset").arg(format!("{:.3}", (start - t0) as f64 / 1e6)).arg("-i").arg(path);
    }
    cmd.args(["-filter_complex", &filter, "-map", "[v]"]);
    if !audios.is_empty() {
        cmd.args(["-map", "[a]", "-c:a", "libopus", "-b:a", "64k"]);
    }
    cmd.args(["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k", "-threads", "1"]);
    cmd.arg(&part);
    let res = cmd.output().map_err(Error::Io)?;
    if !res.status.success() {
        let _ = std::fs::remove_file(&part);
        let msg = String::from_utf8_lossy(&res.stderr);
        return Err(Error::Corrupt(format!("ffmpeg failed: {}", msg.lines().last().unwrap_or(""))));
    }
    std::fs::File::open(&part)?.sync_all()?;
    std::fs::rename(&part, &out)?;
    let data = std::fs::read(&out)?;
    Ok(Some(FileEntry {
        name: "composite.webm".into(),
        kind: "composite".into(),
        participants: Vec::new(),
        tracks: Vec::new(),
        start: ts(t0),
        end: ts(end),
        duration_ms: ((end - t0) / 1000).max(0) as u64,
        bytes: data.len() as u64,
        sha256: hex(&Sha256::digest(&data)),
        content_type: "video/webm".into(),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crypt::MasterKey;
    use crate::testing::{captured, recorder};

    /// A recording a crash left behind, finalised at a start with another key or none: refused,
    /// its captures kept and its state unfinished; with its key it is then finished whole.
    #[test]
    fn a_recording_is_not_finalised_without_its_key() {
        let root = tempfile::tempdir().unwrap();
        let key = MasterKey::new([6; 32]);
        captured(root.path(), "c1", "r1", Some(&key));
        let dir = root.path().join("c1/r1");
        let options = |key: Option<MasterKey>| FinaliseOptions { key, composite: false, ffmpeg: "ffmpeg".into() };
        let cap = dir.join("captures/p-cam.cap");
        let before = std::fs::read(&cap).unwrap();

        assert!(matches!(finalise(&dir, &options(Some(MasterKey::new([7; 32])))), Err(Error::Decrypt)));
        assert!(matches!(finalise(&dir, &options(None)), Err(Error::KeyNeeded)));
        assert_eq!(std::fs::read(&cap).unwrap(), before, "the captures are kept");
        assert_ne!(layout::read_meta(&dir).unwrap().state, RecordingState::Complete);

        let m = finalise(&dir, &options(Some(key.clone()))).unwrap();
        assert_eq!(m.files.len(), 1, "{m:?}");
        assert!(m.problems.is_empty(), "{m:?}");
        assert_eq!(recorder(root.path(), Some(key)).list("c1").unwrap()[0].0.state, RecordingState::Complete);
    }
}
