//! A live recording: one capture task per track, fed by an SFU tap. Each task writes its
//! packets as they come (one layer of a simulcast track, switching on keyframes) and makes
//! them durable once a second; a write error (disk full) stops the whole recording and is
//! reported, with what was captured kept and finalised.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use huizhen_sfu::forward::{Layer, Rewriter, Verdict};
use huizhen_sfu::{SenderClock, Sfu, TapEvent, TapTrack};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::capture::{CaptureHeader, CaptureWriter, Record, Rtp};
use crate::crypt::MasterKey;
use crate::finalise::{FinaliseOptions, Manifest};
use crate::layout::{self, RecordingMeta, RecordingState};

/// How often captured media is made durable: a crash loses at most about this much.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// A simulcast layer counts as being sent while its packets arrived within this window.
const LAYER_ALIVE: Duration = Duration::from_millis(1500);

#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// The recordings root (`<data>/recordings`).
    pub root: PathBuf,
    pub key: Option<MasterKey>,
    /// Stop a recording once its captures reach this many bytes (0: no limit but the disk).
    pub max_bytes: u64,
    pub composite: bool,
    pub ffmpeg: PathBuf,
}

#[derive(Clone, Debug)]
pub enum RecorderEvent {
    /// Capture stopped by itself (disk full, write error); what was captured is finalised.
    Failed {
        recording: String,
        code: &'static str,
        reason: String,
    },
    Finalised {
        recording: String,
        manifest: Box<Result<Manifest, String>>,
    },
}

#[derive(Clone)]
pub struct Recorder {
    cfg: Arc<RecorderConfig>,
}

struct TrackTask {
    participant: String,
    path: PathBuf,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), Error>>,
}

/// A recording in progress. Dropping it without `stop` leaves the captures for start-up
/// recovery to finalise.
pub struct Active {
    pub id: String,
    pub dir: PathBuf,
    recorder: Recorder,
    control: mpsc::UnboundedSender<Control>,
    _session: JoinHandle<()>,
}

enum Control {
    Exclude(String, tokio::sync::oneshot::Sender<()>),
    Stop(String, tokio::sync::oneshot::Sender<()>),
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

impl Recorder {
    pub fn new(cfg: RecorderConfig) -> Self {
        Self { cfg: Arc::new(cfg) }
    }

    pub fn config(&self) -> &RecorderConfig {
        &self.cfg
    }

    pub(crate) fn finalise_options(&self) -> FinaliseOptions {
        FinaliseOptions { key: self.cfg.key.clone(), composite: self.cfg.composite, ffmpeg: self.cfg.ffmpeg.clone() }
    }

    /// Starts recording `consultation`'s room: every track published now or later.
    pub async fn start(
        &self,
        sfu: &Sfu,
        consultation: &str,
        started_by: &str,
        events: mpsc::UnboundedSender<RecorderEvent>,
    ) -> Result<Active, Error> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let dir = layout::recording_dir(&self.cfg.root, consultation, &id)?;
        std::fs::create_dir_all(dir.join("captures")).map_err(Error::from_io)?;
        let meta = RecordingMeta {
            id: id.clone(),
            consultation: consultation.to_owned(),
            state: RecordingState::Capturing,
            started_at: jiff::Timestamp::now(),
            started_by: started_by.to_owned(),
            stopped_at: None,
            stopped_by: None,
            excluded: Vec::new(),
            encrypted: self.cfg.key.is_some(),
            failure: None,
        };
        layout::write_meta(&dir, &meta)?;
        if let Some(parent) = dir.parent() {
            layout::sync_dir(parent)?;
        }
        let (tap_tx, tap_rx) = mpsc::unbounded_channel();
        let tap = sfu.tap(consultation, &format!("rec-{id}"), tap_tx).await.map_err(|e| Error::Media(e.to_string()))?;
        let (control, control_rx) = mpsc::unbounded_channel();
        let session = tokio::spawn(run(self.clone(), meta, dir.clone(), tap, tap_rx, control_rx, events));
        tracing::info!(recording = %id, consultation, "recording started");
        Ok(Active { id, dir, recorder: self.clone(), control, _session: session })
    }

    /// Finalises every recording a crash or a stop left unfinished. Run at start-up.
    pub async fn recover(&self) -> Vec<(PathBuf, Result<Manifest, Error>)> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for dir in layout::all_recordings(&me.cfg.root) {
                match layout::read_meta(&dir) {
                    Ok(m) if m.state != RecordingState::Complete => {
                        let r = crate::finalise::finalise(&dir, &me.finalise_options());
                        out.push((dir, r));
                    }
                    _ => {}
                }
            }
            out
        })
        .await
        .unwrap_or_default()
    }

    /// The recordings of a consultation: manifests of finished ones, state of the others.
    pub fn list(&self, consultation: &str) -> Result<Vec<(RecordingMeta, Option<Manifest>)>, Error> {
        let Some(c) = layout::safe_name(consultation) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.cfg.root.join(c)) else { return Ok(out) };
        for e in rd.flatten() {
            let dir = e.path();
            let Ok(meta) = layout::read_meta(&dir) else { continue };
            let manifest = crate::finalise::read_manifest(&dir).ok();
            out.push((meta, manifest));
        }
        out.sort_by_key(|(m, _)| m.started_at);
        Ok(out)
    }

    /// Opens a finished file for reading, decrypting when stored encrypted. Returns the
    /// reader and the manifest entry (size, hash, type).
    pub fn open(
        &self,
        consultation: &str,
        recording: &str,
        name: &str,
    ) -> Result<(Box<dyn std::io::Read + Send>, crate::FileEntry), Error> {
        let dir = layout::recording_dir(&self.cfg.root, consultation, recording)?;
        let manifest = crate::finalise::read_manifest(&dir)?;
        let entry = manifest.files.iter().find(|f| f.name == name).cloned().ok_or(Error::NotFound)?;
        Ok((self.open_in(&dir, &manifest, &entry)?, entry))
    }

    /// One file of the finished recording in `dir`, as served (decrypted when sealed).
    pub(crate) fn open_in(
        &self,
        dir: &Path,
        manifest: &Manifest,
        entry: &crate::FileEntry,
    ) -> Result<Box<dyn std::io::Read + Send>, Error> {
        let file = std::fs::File::open(dir.join("files").join(&entry.name)).map_err(|_| Error::NotFound)?;
        Ok(if manifest.encrypted && entry.kind == "participant" {
            let key = self.cfg.key.as_ref().ok_or(Error::KeyNeeded)?;
            Box::new(crate::crypt::OpeningReader::new(std::io::BufReader::new(file), key)?)
        } else {
            Box::new(std::io::BufReader::new(file))
        })
    }

    /// Deletes a finished recording (files, manifest, state) for good.
    pub fn delete(&self, consultation: &str, recording: &str) -> Result<(), Error> {
        let dir = layout::recording_dir(&self.cfg.root, consultation, recording)?;
        let meta = layout::read_meta(&dir)?;
        if meta.state != RecordingState::Complete {
            return Err(Error::Busy);
        }
        std::fs::remove_dir_all(&dir)?;
        if let Some(parent) = dir.parent() {
            layout::sync_dir(parent)?;
        }
        Ok(())
    }

    /// Finished recordings that stopped before `cutoff` (for the retention sweep).
    pub fn expired(&self, cutoff: jiff::Timestamp) -> Vec<RecordingMeta> {
        layout::all_recordings(&self.cfg.root)
            .into_iter()
            .filter_map(|d| layout::read_meta(&d).ok())
            .filter(|m| m.state == RecordingState::Complete && m.stopped_at.unwrap_or(m.started_at) < cutoff)
            .collect()
    }
}

impl Active {
    /// Leaves a participant's media out: what was captured of it is deleted now, and nothing
    /// more of it is captured.
    pub async fn exclude(&self, participant: &str) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Exclude(participant.to_owned(), tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops capturing (every capture closed and durable), then finalises in the background;
    /// `RecorderEvent::Finalised` says when the files are there.
    pub async fn stop(self, by: &str) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Stop(by.to_owned(), tx)).is_ok() {
            let _ = rx.await;
        }
        tracing::info!(recording = %self.id, "recording stopped");
    }

    /// The recordings root this recording lives under.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    recorder: Recorder,
    mut meta: RecordingMeta,
    dir: PathBuf,
    tap: huizhen_sfu::Tap,
    mut tap_rx: mpsc::UnboundedReceiver<TapEvent>,
    mut control: mpsc::UnboundedReceiver<Control>,
    events: mpsc::UnboundedSender<RecorderEvent>,
) {
    let cfg = recorder.cfg.clone();
    let (fail_tx, mut fail_rx) = mpsc::unbounded_channel::<Error>();
    let mut tasks: Vec<TrackTask> = Vec::new();
    let mut excluded: HashSet<String> = HashSet::new();
    let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut n = 0u32;
    let mut stopped: Option<tokio::sync::oneshot::Sender<()>> = None;
    loop {
        tokio::select! {
            ev = tap_rx.recv() => match ev {
                Some(TapEvent::Track(t)) => {
                    if excluded.contains(&t.info.participant) { continue; }
                    n += 1;
                    let path = dir.join("captures").join(format!("{n:04}.cap"));
                    let (stop, stop_rx) = watch::channel(false);
                    let participant = t.info.participant.clone();
                    let task = tokio::spawn(capture_track(t, path.clone(), cfg.clone(), stop_rx, fail_tx.clone(), bytes.clone()));
                    tasks.push(TrackTask { participant, path, stop, task });
                }
                Some(TapEvent::TrackEnded { .. }) => {}
                // The room closed (everyone left): the recording ends with it.
                None => break,
            },
            c = control.recv() => match c {
                Some(Control::Exclude(p, done)) => {
                    excluded.insert(p.clone());
                    let (gone, kept): (Vec<TrackTask>, Vec<TrackTask>) = tasks.into_iter().partition(|t| t.participant == p);
                    tasks = kept;
                    for t in gone {
                        let _ = t.stop.send(true);
                        let _ = t.task.await;
                        let _ = std::fs::remove_file(&t.path);
                    }
                    let _ = layout::sync_dir(&dir.join("captures"));
                    if !meta.excluded.contains(&p) {
                        meta.excluded.push(p);
                    }
                    let _ = layout::write_meta(&dir, &meta);
                    let _ = done.send(());
                }
                Some(Control::Stop(by, done)) => {
                    meta.stopped_by = Some(by);
                    stopped = Some(done);
                    break;
                }
                None => break,
            },
            Some(e) = fail_rx.recv() => {
                tracing::warn!(recording = %meta.id, error = %e, "recording stopped by a write error");
                meta.failure = Some(e.to_string());
                let _ = events.send(RecorderEvent::Failed { recording: meta.id.clone(), code: e.code(), reason: e.to_string() });
                break;
            }
        }
    }
    tap.close().await;
    for t in &tasks {
        let _ = t.stop.send(true);
    }
    for t in tasks {
        let _ = t.task.await;
    }
    meta.state = RecordingState::Finalising;
    meta.stopped_at = Some(jiff::Timestamp::now());
    let _ = layout::write_meta(&dir, &meta);
    if let Some(done) = stopped {
        let _ = done.send(());
    }
    let opts = recorder.finalise_options();
    let id = meta.id.clone();
    let manifest = tokio::task::spawn_blocking(move || crate::finalise::finalise(&dir, &opts))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(e) = &manifest {
        tracing::error!(recording = %id, error = %e, "finalising failed; start-up will try again");
    }
    let _ = events.send(RecorderEvent::Finalised { recording: id, manifest: Box::new(manifest) });
}

/// Which simulcast layer to keep: the highest one arriving, switched to on its keyframe.
struct LayerPick {
    rw: Rewriter,
    seen: [Option<Instant>; 3],
}

impl LayerPick {
    fn keep(&mut self, layer: Layer, seq: u16, ts: u32, keyframe: bool, now: Instant) -> Verdict {
        if let Some(s) = self.seen.get_mut(usize::from(layer)) {
            *s = Some(now);
        }
        let best = (0..3u8)
            .rev()
            .find(|l| self.seen[usize::from(*l)].is_some_and(|t| now.saturating_duration_since(t) < LAYER_ALIVE))
            .unwrap_or(layer);
        if best != self.rw.target() {
            self.rw.set_target(best);
        }
        self.rw.on_packet(layer, seq, ts, keyframe, now)
    }
}

async fn capture_track(
    mut t: TapTrack,
    path: PathBuf,
    cfg: Arc<RecorderConfig>,
    mut stop: watch::Receiver<bool>,
    fail: mpsc::UnboundedSender<Error>,
    total: Arc<std::sync::atomic::AtomicU64>,
) -> Result<(), Error> {
    let r = capture_loop(&mut t, &path, &cfg, &mut stop, &total).await;
    if let Err(e) = &r {
        let _ = fail.send(match e {
            Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => Error::DiskFull,
            Error::DiskFull => Error::DiskFull,
            other => Error::Corrupt(other.to_string()),
        });
    }
    r
}

async fn sync(w: &mut CaptureWriter) -> Result<(), Error> {
    w.flush().map_err(|e| match e {
        Error::Io(io) => Error::from_io(io),
        other => other,
    })?;
    let f = w.sync_handle()?;
    tokio::task::spawn_blocking(move || f.sync_data())
        .await
        .map_err(|e| Error::Corrupt(e.to_string()))?
        .map_err(Error::from_io)
}

async fn capture_loop(
    t: &mut TapTrack,
    path: &Path,
    cfg: &RecorderConfig,
    stop: &mut watch::Receiver<bool>,
    total: &std::sync::atomic::AtomicU64,
) -> Result<(), Error> {
    let header = CaptureHeader {
        track: t.info.id.clone(),
        participant: t.info.participant.clone(),
        kind: match t.info.kind {
            huizhen_sfu::TrackKind::Audio => "audio".into(),
            huizhen_sfu::TrackKind::Video => "video".into(),
        },
        codec: t.info.codec.clone(),
        clock_rate: t.clock_rate,
        channels: t.channels,
        started_at_us: now_us(),
        salt: None,
    };
    let mut w = CaptureWriter::create(path, header, cfg.key.as_ref())?;
    if let Some(parent) = path.parent() {
        layout::sync_dir(parent)?;
    }
    // The first picture must be a keyframe: ask for one now rather than wait for the next.
    let video = t.info.kind == huizhen_sfu::TrackKind::Video;
    if video {
        t.keyframes.request(t.keyframes.highest_layer());
    }
    let mut pick = LayerPick { rw: Rewriter::new(t.clock_rate, t.keyframes.highest_layer()), seen: [None; 3] };
    let mut reports: HashMap<u32, SenderClock> = HashMap::new();
    let mut tick = tokio::time::interval(SYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_bytes = w.bytes;
    total.fetch_add(w.bytes, std::sync::atomic::Ordering::Relaxed);
    loop {
        tokio::select! {
            p = t.packets.recv() => {
                let Some(inb) = p else { break };
                if inb.padding {
                    continue;
                }
                let h = &inb.pkt.header;
                let keep = if video {
                    match pick.keep(inb.layer, h.sequence_number, h.timestamp, inb.keyframe, Instant::now()) {
                        Verdict::Forward { .. } => true,
                        Verdict::DropNeedKeyframe(l) => { t.keyframes.request(l); false }
                        Verdict::Drop => false,
                    }
                } else {
                    true
                };
                if keep {
                    let rtp = Rtp { ssrc: h.ssrc, seq: h.sequence_number, ts: h.timestamp, marker: h.marker, payload: inb.pkt.payload.to_vec() };
                    w.append(&Record::Rtp { at_us: now_us(), layer: inb.layer, keyframe: inb.keyframe, rtp })?;
                }
            }
            _ = tick.tick() => {
                for (ssrc, c) in t.reports.snapshot() {
                    if reports.get(&ssrc) != Some(&c) {
                        reports.insert(ssrc, c);
                        w.append(&Record::SenderReport { at_us: now_us(), ssrc, ntp: c.ntp, rtp: c.rtp })?;
                    }
                }
                sync(&mut w).await?;
                let grown = w.bytes - last_bytes;
                last_bytes = w.bytes;
                let all = total.fetch_add(grown, std::sync::atomic::Ordering::Relaxed) + grown;
                if cfg.max_bytes > 0 && all > cfg.max_bytes {
                    return Err(Error::DiskFull);
                }
            }
            _ = stop.changed() => break,
        }
    }
    for (ssrc, c) in t.reports.snapshot() {
        if reports.get(&ssrc) != Some(&c) {
            w.append(&Record::SenderReport { at_us: now_us(), ssrc, ntp: c.ntp, rtp: c.rtp })?;
        }
    }
    w.append(&Record::End { at_us: now_us() })?;
    sync(&mut w).await
}
