//! What the crate's tests make: a capture of a few VP8 frames, a recording a crash left
//! unfinished, a recorder over a directory.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use crate::capture::{CaptureHeader, CaptureWriter, Record, Rtp};
use crate::crypt::MasterKey;
use crate::layout::{self, RecordingState};
use crate::{Recorder, RecorderConfig, RecordingMeta};

pub(crate) fn recorder(root: &Path, key: Option<MasterKey>) -> Recorder {
    Recorder::new(RecorderConfig { root: root.into(), key, max_bytes: 0, composite: false, ffmpeg: "ffmpeg".into() })
}

/// A recording as a node leaves it when it stops capturing without finalising (a crash):
/// its state and one participant's capture of three VP8 frames.
pub(crate) fn captured(root: &Path, consultation: &str, id: &str, key: Option<&MasterKey>) {
    let dir = root.join(consultation).join(id);
    std::fs::create_dir_all(dir.join("captures")).unwrap();
    let meta = RecordingMeta {
        id: id.into(),
        consultation: consultation.into(),
        state: RecordingState::Capturing,
        started_at: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        started_by: "u-doctor".into(),
        stopped_at: None,
        stopped_by: None,
        excluded: Vec::new(),
        encrypted: key.is_some(),
        failure: None,
    };
    layout::write_meta(&dir, &meta).unwrap();
    let header = vp8_header(1_800_000_000_000_000);
    let mut w = CaptureWriter::create(&dir.join("captures").join("p-cam.cap"), header, key).unwrap();
    append_vp8_frames(&mut w);
    w.append(&Record::End { at_us: 100_000 }).unwrap();
    w.flush().unwrap();
}

/// Participant `p`'s camera in VP8, captured from `started_at_us`: tests' capture header.
pub(crate) fn vp8_header(started_at_us: i64) -> CaptureHeader {
    CaptureHeader {
        track: "p/cam".into(),
        participant: "p".into(),
        kind: "video".into(),
        codec: "video/VP8".into(),
        clock_rate: 90_000,
        channels: 0,
        started_at_us,
        salt: None,
    }
}

/// Three VP8 frames 33 ms apart (a keyframe, two inter frames) as a capture holds them: the
/// media of tests that need a capture a decoder accepts.
pub(crate) fn append_vp8_frames(w: &mut CaptureWriter) {
    for i in 0..3u16 {
        // VP8 payload descriptor (start of partition 0), then a key or an inter frame.
        let mut payload = vec![0x10];
        payload.extend_from_slice(if i == 0 {
            &[0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0x00, 0x00]
        } else {
            &[0x31, 0x02, 0x00, 0x00, 0x00]
        });
        let rtp = Rtp { ssrc: 7, seq: 100 + i, ts: 3000 * u32::from(i), marker: true, payload };
        w.append(&Record::Rtp { at_us: i64::from(i) * 33_000, layer: 0, keyframe: i == 0, rtp }).unwrap();
    }
}
