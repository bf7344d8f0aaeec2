//! A small WebM (Matroska) writer for finished recordings: EBML header, Segment with Info
//! (duration), Tracks (VP8, Opus), Clusters of SimpleBlocks starting at video keyframes, and
//! Cues so players can seek. Everything is known before writing (the recording is over), so
//! every element gets its exact size and the file streams out in one pass, through an
//! encrypting writer when recordings are encrypted.

use std::io::Write;

use crate::depack::Codec;

pub struct TrackSpec {
    pub codec: Codec,
    pub width: u16,
    pub height: u16,
    pub channels: u8,
}

/// One frame placed on the file's timeline (milliseconds from the file's start).
pub struct Block<'a> {
    /// Index into the track list.
    pub track: usize,
    pub time_ms: i64,
    pub keyframe: bool,
    pub data: &'a [u8],
}

fn vint_size(n: u64) -> Vec<u8> {
    // The shortest length that is not the reserved all-ones pattern.
    for len in 1..=8u32 {
        if n < (1u64 << (7 * len)) - 1 {
            let mut out = Vec::with_capacity(len as usize);
            let v = n | (1u64 << (7 * len));
            for i in (0..len).rev() {
                out.push((v >> (8 * i)) as u8);
            }
            return out;
        }
    }
    let mut out = vec![0x01];
    out.extend_from_slice(&n.to_be_bytes()[1..]);
    out
}

fn id_bytes(id: u32) -> Vec<u8> {
    let b = id.to_be_bytes();
    let skip = b.iter().position(|x| *x != 0).unwrap_or(3);
    b[skip..].to_vec()
}

fn element(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = id_bytes(id);
    out.extend(vint_size(body.len() as u64));
    out.extend_from_slice(body);
    out
}

fn uint(id: u32, v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().position(|x| *x != 0).unwrap_or(7);
    element(id, &b[skip..])
}

fn float(id: u32, v: f64) -> Vec<u8> {
    element(id, &v.to_be_bytes())
}

fn string(id: u32, s: &str) -> Vec<u8> {
    element(id, s.as_bytes())
}

fn master(id: u32, parts: &[Vec<u8>]) -> Vec<u8> {
    element(id, &parts.concat())
}

/// RFC 7845 §5.1 identification header; WebRTC Opus is declared as two channels.
fn opus_head(channels: u8) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(channels);
    h.extend_from_slice(&0u16.to_le_bytes()); // pre-skip: RTP Opus starts without priming
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

fn track_entry(number: usize, t: &TrackSpec) -> Vec<u8> {
    let n = number as u64 + 1;
    let mut parts = vec![uint(0xD7, n), uint(0x73C5, n), uint(0x9C, 0)];
    match t.codec {
        Codec::Vp8 => {
            parts.push(uint(0x83, 1));
            parts.push(string(0x86, "V_VP8"));
            parts.push(master(0xE0, &[uint(0xB0, u64::from(t.width)), uint(0xBA, u64::from(t.height))]));
        }
        Codec::Opus => {
            parts.push(uint(0x83, 2));
            parts.push(string(0x86, "A_OPUS"));
            parts.push(element(0x63A2, &opus_head(t.channels)));
            parts.push(uint(0x56BB, 80_000_000)); // SeekPreRoll: 80 ms, as the Opus mapping asks
            parts.push(master(0xE1, &[float(0xB5, 48_000.0), uint(0x9F, u64::from(t.channels))]));
        }
    }
    master(0xAE, &parts)
}

/// Clusters begin at a video keyframe (so seeking lands on one) and never span more than
/// the 16-bit relative block time allows.
const MAX_CLUSTER_MS: i64 = 5_000;

/// Writes a complete WebM file. `blocks` must be in time order; `duration_ms` is the time of
/// the end of the last frame.
pub fn write<W: Write + ?Sized>(
    out: &mut W,
    tracks: &[TrackSpec],
    blocks: &[Block<'_>],
    duration_ms: f64,
) -> std::io::Result<()> {
    let ebml = master(
        0x1A45DFA3,
        &[
            uint(0x4286, 1),
            uint(0x42F7, 1),
            uint(0x42F2, 4),
            uint(0x42F3, 8),
            string(0x4282, "webm"),
            uint(0x4287, 4),
            uint(0x4285, 2),
        ],
    );
    let info = master(
        0x1549A966,
        &[
            uint(0x2AD7B1, 1_000_000),
            float(0x4489, duration_ms.max(0.0)),
            string(0x4D80, "huizhen"),
            string(0x5741, "huizhen-recorder"),
        ],
    );
    let track_list = master(0x1654AE6B, &tracks.iter().enumerate().map(|(i, t)| track_entry(i, t)).collect::<Vec<_>>());
    let has_video = tracks.iter().any(|t| t.codec == Codec::Vp8);
    // Clusters, with their offsets from the start of the Segment's body for the Cues.
    let mut clusters: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut current: Option<(i64, Vec<Vec<u8>>)> = None;
    for b in blocks {
        let video_key = b.keyframe && tracks[b.track].codec == Codec::Vp8;
        let start_new = match &current {
            None => true,
            Some((t0, _)) => {
                let age = b.time_ms - t0;
                age >= 30_000 || (has_video && video_key && age > 0) || (!has_video && age >= MAX_CLUSTER_MS)
            }
        };
        if start_new {
            if let Some((t0, body)) = current.take() {
                clusters.push((t0, body.concat()));
            }
            current = Some((b.time_ms, vec![uint(0xE7, b.time_ms.max(0) as u64)]));
        }
        if let Some((t0, body)) = current.as_mut() {
            // The track number is coded like an element size.
            let mut sb = vint_size(b.track as u64 + 1);
            let rel = (b.time_ms - *t0).clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
            sb.extend_from_slice(&rel.to_be_bytes());
            sb.push(if b.keyframe { 0x80 } else { 0x00 });
            sb.extend_from_slice(b.data);
            body.push(element(0xA3, &sb));
        }
    }
    if let Some((t0, body)) = current.take() {
        clusters.push((t0, body.concat()));
    }
    let cluster_bytes: Vec<Vec<u8>> = clusters.iter().map(|(_, body)| element(0x1F43B675, body)).collect();
    let mut offset = (info.len() + track_list.len()) as u64;
    let mut points = Vec::new();
    let cue_track = tracks.iter().position(|t| t.codec == Codec::Vp8).unwrap_or(0) as u64 + 1;
    for ((t0, _), bytes) in clusters.iter().zip(&cluster_bytes) {
        points.push(master(
            0xBB,
            &[uint(0xB3, (*t0).max(0) as u64), master(0xB7, &[uint(0xF7, cue_track), uint(0xF1, offset)])],
        ));
        offset += bytes.len() as u64;
    }
    let cues = master(0x1C53BB6B, &points);
    let body_len = info.len() + track_list.len() + cluster_bytes.iter().map(Vec::len).sum::<usize>() + cues.len();
    out.write_all(&ebml)?;
    out.write_all(&id_bytes(0x18538067))?;
    out.write_all(&vint_size(body_len as u64))?;
    out.write_all(&info)?;
    out.write_all(&track_list)?;
    for c in &cluster_bytes {
        out.write_all(c)?;
    }
    out.write_all(&cues)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ids_encode_as_ebml_wants() {
        assert_eq!(vint_size(0), vec![0x80]);
        assert_eq!(vint_size(126), vec![0xFE]);
        assert_eq!(vint_size(127), vec![0x40, 0x7F]);
        assert_eq!(vint_size(1 << 20), vec![0x30, 0x00, 0x00]);
        assert_eq!(id_bytes(0x1A45DFA3), vec![0x1A, 0x45, 0xDF, 0xA3]);
        assert_eq!(id_bytes(0xA3), vec![0xA3]);
        assert_eq!(uint(0xD7, 1), vec![0xD7, 0x81, 0x01]);
    }
}
