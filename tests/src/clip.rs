//! A short real clip for media tests: VP8 frames (from an IVF file) and Opus packets (from an
//! Ogg file), made once with ffmpeg from its test sources and kept under `target/test-clip`.
//! Publishers send these as real encoded media, so what the server forwards or records can
//! be decoded and checked by ffmpeg/ffprobe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

pub struct Clip {
    /// 30 frames/s, a keyframe every second.
    pub video: Arc<Vec<Bytes>>,
    /// 20 ms per packet.
    pub audio: Arc<Vec<Bytes>>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-clip")
}

fn make(out: &Path, args: &[&str]) {
    if out.exists() {
        return;
    }
    std::fs::create_dir_all(out.parent().expect("clip dir")).expect("clip dir");
    // Written under a private name first: test processes running at once must not read a
    // half-written clip.
    let tmp = out.with_extension(format!(
        "{}.tmp.{}",
        out.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-nostdin"])
        .args(args)
        .arg(&tmp)
        .status()
        .expect("ffmpeg must be installed for the media clip (scripts/test.sh installs it)");
    assert!(status.success(), "ffmpeg could not make {}", out.display());
    std::fs::rename(&tmp, out).expect("clip rename");
}

fn ivf_frames(data: &[u8]) -> Vec<Bytes> {
    assert_eq!(&data[..4], b"DKIF", "not an IVF file");
    let header = u16::from_le_bytes([data[6], data[7]]) as usize;
    let mut pos = header;
    let mut out = Vec::new();
    while pos + 12 <= data.len() {
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        pos += 12;
        let Some(frame) = data.get(pos..pos + len) else { break };
        out.push(Bytes::copy_from_slice(frame));
        pos += len;
    }
    out
}

/// Ogg pages → packets (RFC 3533 lacing), without the two Opus header packets.
fn ogg_packets(data: &[u8]) -> Vec<Bytes> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut pos = 0;
    while pos + 27 <= data.len() && &data[pos..pos + 4] == b"OggS" {
        let segments = data[pos + 26] as usize;
        let table = &data[pos + 27..pos + 27 + segments];
        let mut body = pos + 27 + segments;
        for &lace in table {
            current.extend_from_slice(&data[body..body + lace as usize]);
            body += lace as usize;
            if lace < 255 {
                packets.push(Bytes::from(std::mem::take(&mut current)));
            }
        }
        pos = body;
    }
    packets.into_iter().skip(2).collect()
}

/// The clip's VP8 video at `size` and bitrate `rate`, 30 frames/s, a keyframe every 30 frames.
fn vp8(size: &str, rate: &str) -> Arc<Vec<Bytes>> {
    let out = dir().join(format!("clip-{size}.ivf"));
    make(
        &out,
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
            "-t",
            "4",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            rate,
            "-g",
            "30",
            "-keyint_min",
            "30",
            "-f",
            "ivf",
        ],
    );
    Arc::new(ivf_frames(&std::fs::read(&out).expect("clip video")))
}

/// The clip's video in three sizes for simulcast (rids q, h, f), at bitrates a browser uses.
pub fn layers() -> &'static [Arc<Vec<Bytes>>; 3] {
    static LAYERS: OnceLock<[Arc<Vec<Bytes>>; 3]> = OnceLock::new();
    LAYERS.get_or_init(|| [vp8("320x180", "150k"), load().video.clone(), vp8("1280x720", "1500k")])
}

pub fn load() -> &'static Clip {
    static CLIP: OnceLock<Clip> = OnceLock::new();
    CLIP.get_or_init(|| {
        let d = dir();
        let ogg = d.join("clip.ogg");
        make(
            &ogg,
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                "4",
                "-c:a",
                "libopus",
                "-b:a",
                "32k",
                "-frame_duration",
                "20",
                "-f",
                "ogg",
            ],
        );
        let video = vp8("640x360", "600k");
        let audio = ogg_packets(&std::fs::read(&ogg).expect("clip audio"));
        assert!(
            video.len() >= 100 && audio.len() >= 150,
            "clip too short: {} frames, {} packets",
            video.len(),
            audio.len()
        );
        Clip { video, audio: Arc::new(audio) }
    })
}
