//! From captured RTP to timed media frames: reorder and de-duplicate by sequence number,
//! reassemble VP8 frames from their packets (RFC 7741), drop what cannot be decoded (a frame
//! with a missing packet, and video after it until the next keyframe), and put every frame
//! on the publisher's wallclock through its RTCP sender reports, so a participant's audio and
//! video line up the way they were captured.

use std::collections::BTreeMap;

use crate::Error;
use crate::capture::{Capture, Record, Rtp};

#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Microseconds since the Unix epoch on the sender's clock (via sender reports), or on
    /// the server's arrival clock when the sender sent none.
    pub wall_us: i64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    Opus,
}

impl Codec {
    pub fn from_mime(mime: &str) -> Result<Codec, Error> {
        match mime.to_ascii_lowercase().as_str() {
            "video/vp8" => Ok(Codec::Vp8),
            "audio/opus" => Ok(Codec::Opus),
            other => Err(Error::UnsupportedCodec(other.to_owned())),
        }
    }
}

pub struct TrackFrames {
    pub codec: Codec,
    pub frames: Vec<Frame>,
    /// From the first VP8 keyframe (0 for audio).
    pub width: u16,
    pub height: u16,
    /// Frames left out because a packet of them (or of the keyframe they depend on) was lost.
    pub dropped: u64,
}

/// NTP (RFC 3550: seconds since 1900 in the high word) to microseconds since 1970.
pub fn ntp_to_unix_us(ntp: u64) -> i64 {
    let secs = (ntp >> 32) as i64 - 2_208_988_800;
    let frac = (((ntp & 0xffff_ffff) as u128 * 1_000_000) >> 32) as i64;
    secs * 1_000_000 + frac
}

/// The start of a VP8 payload after its descriptor, whether the packet starts a frame
/// (S bit with partition 0), or None when the descriptor is malformed.
fn vp8_payload(p: &[u8]) -> Option<(usize, bool)> {
    let b0 = *p.first()?;
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            let pid = *p.get(i)?;
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    (i <= p.len()).then_some((i, start))
}

/// Width and height from a VP8 keyframe's header (RFC 6386 §9.1).
pub fn vp8_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((w, h))
}

/// Maps one SSRC's RTP timestamps to wallclock microseconds.
struct Clock {
    /// (wall of `rtp`, rtp) from the first sender report: the one anchor, see `wall`.
    anchor: Option<(i64, u32)>,
    fallback: Option<(i64, u32)>,
    rate: i64,
}

impl Clock {
    fn wall(&self, ts: u32, arrival: i64) -> i64 {
        // One anchor per SSRC, its first sender report: from there the RTP clock spaces the
        // frames exactly. Re-anchoring on every report would let each report's few ms of
        // jitter squeeze or stretch the audio; the price is that clock drift over a very long
        // recording is not corrected.
        let base = self.anchor.or(self.fallback);
        match base {
            Some((wall, rtp)) => wall + i64::from(ts.wrapping_sub(rtp) as i32) * 1_000_000 / self.rate,
            None => arrival,
        }
    }
}

struct Pkt<'a> {
    ext: i64,
    at_us: i64,
    rtp: &'a Rtp,
}

pub fn frames(cap: &Capture) -> Result<TrackFrames, Error> {
    let codec = Codec::from_mime(&cap.header.codec)?;
    let rate = i64::from(cap.header.clock_rate.max(1));
    let mut clocks: BTreeMap<u32, Clock> = BTreeMap::new();
    // Runs of one SSRC in arrival order: a layer switch starts a new run.
    let mut runs: Vec<(u32, Vec<(i64, &Rtp)>)> = Vec::new();
    for r in &cap.records {
        match r {
            Record::SenderReport { ssrc, ntp, rtp, .. } => {
                let c = clocks.entry(*ssrc).or_insert(Clock { anchor: None, fallback: None, rate });
                c.anchor.get_or_insert((ntp_to_unix_us(*ntp), *rtp));
            }
            Record::Rtp { at_us, rtp, .. } if !rtp.payload.is_empty() => {
                let c = clocks.entry(rtp.ssrc).or_insert(Clock { anchor: None, fallback: None, rate });
                c.fallback.get_or_insert((*at_us, rtp.ts));
                match runs.last_mut() {
                    Some((ssrc, v)) if *ssrc == rtp.ssrc => v.push((*at_us, rtp)),
                    _ => runs.push((rtp.ssrc, vec![(*at_us, rtp)])),
                }
            }
            _ => {}
        }
    }
    let mut out = TrackFrames { codec, frames: Vec::new(), width: 0, height: 0, dropped: 0 };
    for (ssrc, run) in runs {
        let Some(clock) = clocks.get(&ssrc) else { continue };
        // Unwrap sequence numbers against the previous packet, then order and de-duplicate
        // (retransmissions arrive late and twice).
        let mut pkts: Vec<Pkt<'_>> = Vec::with_capacity(run.len());
        let mut last: Option<i64> = None;
        for (at_us, rtp) in run {
            let ext = match last {
                Some(l) => l + i64::from(rtp.seq.wrapping_sub(l as u16) as i16),
                None => i64::from(rtp.seq),
            };
            last = Some(ext.max(last.unwrap_or(ext)));
            pkts.push(Pkt { ext, at_us, rtp });
        }
        pkts.sort_by_key(|p| p.ext);
        pkts.dedup_by_key(|p| p.ext);
        match codec {
            Codec::Opus => {
                for p in &pkts {
                    out.frames.push(Frame {
                        wall_us: clock.wall(p.rtp.ts, p.at_us),
                        keyframe: true,
                        data: p.rtp.payload.clone(),
                    });
                }
            }
            Codec::Vp8 => assemble_vp8(&pkts, clock, &mut out),
        }
    }
    // Layer switches and report updates may step back a little: keep time monotonic.
    let mut prev = i64::MIN;
    for f in &mut out.frames {
        f.wall_us = f.wall_us.max(prev);
        prev = f.wall_us;
    }
    Ok(out)
}

fn assemble_vp8(pkts: &[Pkt<'_>], clock: &Clock, out: &mut TrackFrames) {
    // Decodable until a frame is lost; then wait for the next keyframe.
    let mut decodable = false;
    let mut i = 0;
    while i < pkts.len() {
        let ts = pkts[i].rtp.ts;
        let mut j = i;
        while j + 1 < pkts.len() && pkts[j + 1].rtp.ts == ts {
            j += 1;
        }
        let group = &pkts[i..=j];
        i = j + 1;
        let contiguous = group.windows(2).all(|w| w[1].ext == w[0].ext + 1);
        let mut data = Vec::new();
        let mut starts = false;
        let mut ok = contiguous && group.last().is_some_and(|p| p.rtp.marker);
        for (k, p) in group.iter().enumerate() {
            match vp8_payload(&p.rtp.payload) {
                Some((off, start)) => {
                    if k == 0 {
                        starts = start;
                    }
                    data.extend_from_slice(&p.rtp.payload[off..]);
                }
                None => ok = false,
            }
        }
        // The packet before this frame must be the previous frame's last, or one was lost.
        let after_gap = i > group.len() && pkts[i - group.len() - 1].ext + 1 != group[0].ext;
        if after_gap {
            decodable = false;
        }
        if !(ok && starts) || data.is_empty() {
            decodable = false;
            out.dropped += 1;
            continue;
        }
        let keyframe = data[0] & 1 == 0;
        if keyframe {
            decodable = true;
            if out.width == 0
                && let Some((w, h)) = vp8_size(&data)
            {
                out.width = w;
                out.height = h;
            }
        }
        if !decodable {
            out.dropped += 1;
            continue;
        }
        out.frames.push(Frame { wall_us: clock.wall(ts, group[0].at_us), keyframe, data });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::capture::{CaptureHeader, Tail};

    fn header(codec: &str, rate: u32) -> CaptureHeader {
        CaptureHeader {
            track: "p/t".into(),
            participant: "p".into(),
            kind: "video".into(),
            codec: codec.into(),
            clock_rate: rate,
            channels: 0,
            started_at_us: 0,
            salt: None,
        }
    }

    /// A VP8 frame split into `parts` packets; a keyframe carries a real header with 320x180.
    fn vp8_packets(seq: u16, ts: u32, key: bool, parts: usize, at_us: i64) -> Vec<Record> {
        let mut frame =
            if key { vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00] } else { vec![0x11, 0x02, 0x00] };
        frame.extend(std::iter::repeat_n(0xab, 30));
        let chunk = frame.len().div_ceil(parts);
        frame
            .chunks(chunk)
            .enumerate()
            .map(|(k, c)| {
                let mut payload = vec![if k == 0 { 0x10 } else { 0x00 }];
                payload.extend_from_slice(c);
                Record::Rtp {
                    at_us,
                    layer: 0,
                    keyframe: key && k == 0,
                    rtp: Rtp {
                        ssrc: 1,
                        seq: seq.wrapping_add(k as u16),
                        ts,
                        marker: k + 1 == frame.len().div_ceil(chunk),
                        payload,
                    },
                }
            })
            .collect()
    }

    #[test]
    fn vp8_frames_reassemble_across_wrap_and_reorder_and_skip_loss_until_a_keyframe() {
        let mut records = Vec::new();
        let mut seq = 65_530u16;
        for n in 0..10u32 {
            let key = n == 0 || n == 6;
            let mut pk = vp8_packets(seq, 1000 + n * 3000, key, 3, i64::from(n) * 33_333);
            seq = seq.wrapping_add(3);
            if n == 3 {
                pk.remove(1); // frame 3 loses a packet: 3, 4, 5 cannot be decoded
            }
            if n == 1 {
                pk.swap(0, 2); // reordered on the way
            }
            records.extend(pk);
        }
        // A retransmission arriving late and twice.
        records.push(vp8_packets(65_530, 1000, true, 3, 0).remove(1));
        let cap = Capture { header: header("video/VP8", 90_000), records, tail: Tail::Cut };
        let t = frames(&cap).unwrap();
        assert_eq!((t.width, t.height), (320, 180));
        let walls: Vec<i64> = t.frames.iter().map(|f| f.wall_us / 1000).collect();
        // No sender report: arrival time of the first packet anchors the RTP clock.
        assert_eq!(walls, vec![0, 33, 66, 200, 233, 266, 300]);
        assert_eq!(t.dropped, 3);
        assert!(t.frames[0].keyframe && t.frames[3].keyframe);
    }

    #[test]
    fn sender_reports_put_frames_on_the_senders_clock() {
        // 1 January 2026 00:00:00 UTC in NTP seconds.
        let ntp_secs: u64 = 1_767_225_600 + 2_208_988_800;
        let mut records = vec![Record::SenderReport { at_us: 5, ssrc: 9, ntp: ntp_secs << 32, rtp: 48_000 }];
        for n in 0..3u32 {
            records.push(Record::Rtp {
                at_us: 777,
                layer: 0,
                keyframe: true,
                rtp: Rtp { ssrc: 9, seq: n as u16, ts: 48_000 + n * 960, marker: true, payload: vec![1, 2, 3] },
            });
        }
        let cap = Capture { header: header("audio/opus", 48_000), records, tail: Tail::Clean };
        let t = frames(&cap).unwrap();
        let base = 1_767_225_600_000_000i64;
        assert_eq!(t.frames.iter().map(|f| f.wall_us - base).collect::<Vec<_>>(), vec![0, 20_000, 40_000]);
    }
}
