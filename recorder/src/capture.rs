//! Capture files: one per recorded track, append-only, written as packets arrive and made
//! durable about once a second. A crash loses at most what came since the last sync; a torn
//! last record is recognised (length, CRC, and with encryption the AEAD tag) and left out.
//!
//! Layout: `MAGIC`, u32 LE header length, the JSON `CaptureHeader`, then records:
//! u32 LE body length, u32 LE CRC-32 of the body, the body. The body is `Record::encode`,
//! sealed with the file's key (record number as nonce) when the recording is encrypted.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::crypt::{FileKey, MasterKey, SALT_LEN};

pub const MAGIC: &[u8; 8] = b"HZCAPv1\n";
/// No RTP packet comes near this; a larger length means a torn or foreign file.
const MAX_RECORD: u32 = 256 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaptureHeader {
    /// The room's track id, `{participant}/{track}`.
    pub track: String,
    pub participant: String,
    /// `audio` or `video`.
    pub kind: String,
    /// MIME type, e.g. `video/VP8`.
    pub codec: String,
    pub clock_rate: u32,
    pub channels: u16,
    /// Microseconds since the Unix epoch when the capture began (server clock).
    pub started_at_us: i64,
    /// Hex of the per-file salt when the records are sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rtp {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// One RTP packet as received: the publisher's SSRC, sequence number and timestamp (header
    /// extensions are not kept).
    Rtp { at_us: i64, layer: u8, keyframe: bool, rtp: Rtp },
    /// The publisher's latest RTCP sender report for `ssrc`.
    SenderReport { at_us: i64, ssrc: u32, ntp: u64, rtp: u32 },
    /// The capture was closed cleanly.
    End { at_us: i64 },
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            Record::Rtp { at_us, layer, keyframe, rtp } => {
                b.reserve(28 + rtp.payload.len());
                b.push(1);
                b.extend_from_slice(&at_us.to_le_bytes());
                b.push(*layer);
                b.push(u8::from(*keyframe) | (u8::from(rtp.marker) << 1));
                b.extend_from_slice(&rtp.ssrc.to_le_bytes());
                b.extend_from_slice(&rtp.seq.to_le_bytes());
                b.extend_from_slice(&rtp.ts.to_le_bytes());
                b.extend_from_slice(&rtp.payload);
            }
            Record::SenderReport { at_us, ssrc, ntp, rtp } => {
                b.push(2);
                b.extend_from_slice(&at_us.to_le_bytes());
                b.extend_from_slice(&ssrc.to_le_bytes());
                b.extend_from_slice(&ntp.to_le_bytes());
                b.extend_from_slice(&rtp.to_le_bytes());
            }
            Record::End { at_us } => {
                b.push(3);
                b.extend_from_slice(&at_us.to_le_bytes());
            }
        }
        b
    }

    fn decode(b: &[u8]) -> Option<Record> {
        let (&tag, rest) = b.split_first()?;
        let at_us = i64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let rest = &rest[8..];
        match tag {
            1 => {
                let flags = *rest.get(1)?;
                Some(Record::Rtp {
                    at_us,
                    layer: *rest.first()?,
                    keyframe: flags & 1 != 0,
                    rtp: Rtp {
                        ssrc: u32::from_le_bytes(rest.get(2..6)?.try_into().ok()?),
                        seq: u16::from_le_bytes(rest.get(6..8)?.try_into().ok()?),
                        ts: u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?),
                        marker: flags & 2 != 0,
                        payload: rest.get(12..)?.to_vec(),
                    },
                })
            }
            2 if rest.len() == 16 => Some(Record::SenderReport {
                at_us,
                ssrc: u32::from_le_bytes(rest[..4].try_into().ok()?),
                ntp: u64::from_le_bytes(rest[4..12].try_into().ok()?),
                rtp: u32::from_le_bytes(rest[12..16].try_into().ok()?),
            }),
            3 => Some(Record::End { at_us }),
            _ => None,
        }
    }

    pub fn at_us(&self) -> i64 {
        match self {
            Record::Rtp { at_us, .. } | Record::SenderReport { at_us, .. } | Record::End { at_us } => *at_us,
        }
    }
}

pub struct CaptureWriter {
    out: BufWriter<File>,
    /// A second handle on the same file: `sync_data` runs on it off the async threads.
    sync_handle: File,
    key: Option<FileKey>,
    records: u64,
    pub bytes: u64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

impl CaptureWriter {
    /// Creates the file (it must not exist) and makes its header durable.
    pub fn create(path: &Path, mut header: CaptureHeader, key: Option<&MasterKey>) -> Result<Self, Error> {
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
        let file_key = key.map(|k| {
            let salt = crate::crypt::random_salt();
            header.salt = Some(hex(&salt));
            k.file_key(&salt)
        });
        let json = serde_json::to_vec(&header).map_err(|e| Error::Corrupt(e.to_string()))?;
        let sync_handle = file.try_clone()?;
        let mut out = BufWriter::with_capacity(256 * 1024, file);
        out.write_all(MAGIC)?;
        out.write_all(&(json.len() as u32).to_le_bytes())?;
        out.write_all(&json)?;
        out.flush()?;
        sync_handle.sync_all()?;
        let bytes = (MAGIC.len() + 4 + json.len()) as u64;
        Ok(Self { out, sync_handle, key: file_key, records: 0, bytes })
    }

    pub fn append(&mut self, r: &Record) -> Result<(), Error> {
        let plain = r.encode();
        let body = match &self.key {
            Some(k) => k.seal(self.records, false, &plain),
            None => plain,
        };
        self.records += 1;
        let crc = crc32fast::hash(&body);
        self.out.write_all(&(body.len() as u32).to_le_bytes())?;
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&body)?;
        self.bytes += 8 + body.len() as u64;
        Ok(())
    }

    /// Hands buffered records to the kernel (cheap); `sync_handle` then makes them durable.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.out.flush()?;
        Ok(())
    }

    pub fn sync_handle(&self) -> Result<File, Error> {
        Ok(self.sync_handle.try_clone()?)
    }
}

/// How a capture file ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// An `End` record: closed cleanly.
    Clean,
    /// No `End`: the process stopped (crash, kill) and the records up to here are whole.
    Cut,
    /// A partly written or damaged record was found and everything from it on ignored.
    Torn,
}

pub struct Capture {
    pub header: CaptureHeader,
    pub records: Vec<Record>,
    pub tail: Tail,
}

pub fn read(path: &Path, key: Option<&MasterKey>) -> Result<Capture, Error> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    if data.len() < 12 || &data[..8] != MAGIC {
        return Err(Error::Corrupt(format!("{} is not a capture file", path.display())));
    }
    let hlen = u32::from_le_bytes(data[8..12].try_into().map_err(|_| Error::Corrupt("header".into()))?) as usize;
    let json = data.get(12..12 + hlen).ok_or_else(|| Error::Corrupt("header cut off".into()))?;
    let header: CaptureHeader = serde_json::from_slice(json).map_err(|e| Error::Corrupt(e.to_string()))?;
    let file_key = match (&header.salt, key) {
        (Some(s), Some(k)) => {
            let salt: [u8; SALT_LEN] =
                unhex(s).and_then(|v| v.try_into().ok()).ok_or_else(|| Error::Corrupt("salt".into()))?;
            Some(k.file_key(&salt))
        }
        (Some(_), None) => return Err(Error::KeyNeeded),
        (None, _) => None,
    };
    let mut pos = 12 + hlen;
    let mut records = Vec::new();
    let mut tail = Tail::Cut;
    let mut n = 0u64;
    while pos < data.len() {
        let Some(head) = data.get(pos..pos + 8) else {
            tail = Tail::Torn;
            break;
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(body) = data.get(pos + 8..pos + 8 + len as usize).filter(|_| len <= MAX_RECORD) else {
            tail = Tail::Torn;
            break;
        };
        if crc32fast::hash(body) != crc {
            tail = Tail::Torn;
            break;
        }
        let plain = match &file_key {
            Some(k) => match k.open(n, false, body) {
                Ok(p) => p,
                // Written whole (its checksum holds) yet it does not open: another key (or a
                // changed file), not a crash. Reading on would finalise the recording empty
                // and delete its captures.
                Err(_) => return Err(Error::Decrypt),
            },
            None => body.to_vec(),
        };
        n += 1;
        pos += 8 + len as usize;
        match Record::decode(&plain) {
            Some(Record::End { .. }) => {
                tail = Tail::Clean;
                break;
            }
            Some(r) => records.push(r),
            None => {
                tail = Tail::Torn;
                break;
            }
        }
    }
    Ok(Capture { header, records, tail })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn header() -> CaptureHeader {
        crate::testing::vp8_header(1)
    }

    fn write(path: &Path, key: Option<&MasterKey>, n: usize, end: bool) -> Vec<Record> {
        let mut w = CaptureWriter::create(path, header(), key).unwrap();
        let mut all = Vec::new();
        for i in 0..n {
            let rtp =
                Rtp { ssrc: 7, seq: i as u16, ts: 3000 * i as u32, marker: true, payload: vec![i as u8; 100 + i] };
            let r = Record::Rtp { at_us: i as i64, layer: 0, keyframe: i == 0, rtp };
            w.append(&r).unwrap();
            all.push(r);
        }
        let sr = Record::SenderReport { at_us: 99, ssrc: 5, ntp: 1 << 40, rtp: 1234 };
        w.append(&sr).unwrap();
        all.push(sr);
        if end {
            w.append(&Record::End { at_us: 100 }).unwrap();
        }
        w.flush().unwrap();
        all
    }

    #[test]
    fn records_round_trip_clean_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        for (key, end) in [(None, true), (None, false), (Some(MasterKey::new([3; 32])), true)] {
            let p = dir.path().join(format!("{}-{end}.cap", key.is_some()));
            let written = write(&p, key.as_ref(), 20, end);
            let c = read(&p, key.as_ref()).unwrap();
            assert_eq!(c.records, written);
            assert_eq!(c.tail, if end { Tail::Clean } else { Tail::Cut });
            assert_eq!(c.header.track, "p/cam");
        }
    }

    #[test]
    fn a_torn_last_record_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        for key in [None, Some(MasterKey::new([3; 32]))] {
            let p = dir.path().join(format!("torn-{}.cap", key.is_some()));
            let written = write(&p, key.as_ref(), 10, false);
            let full = std::fs::read(&p).unwrap();
            for cut in [1, 5, 9, 30] {
                std::fs::write(&p, &full[..full.len() - cut]).unwrap();
                let c = read(&p, key.as_ref()).unwrap();
                assert_eq!(c.records, written[..written.len() - 1], "cut {cut}");
                assert_eq!(c.tail, Tail::Torn);
            }
        }
    }

    #[test]
    fn sealed_records_hide_the_media_and_need_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.cap");
        let key = MasterKey::new([9; 32]);
        let mut w = CaptureWriter::create(&p, header(), Some(&key)).unwrap();
        let marker = b"PLAINTEXT-MEDIA-MARKER".to_vec();
        let rtp = Rtp { ssrc: 1, seq: 1, ts: 1, marker: true, payload: marker.clone() };
        w.append(&Record::Rtp { at_us: 1, layer: 0, keyframe: true, rtp }).unwrap();
        w.flush().unwrap();
        let raw = std::fs::read(&p).unwrap();
        assert!(!raw.windows(marker.len()).any(|x| x == marker.as_slice()));
        assert!(matches!(read(&p, None), Err(Error::KeyNeeded)));
        assert!(matches!(read(&p, Some(&MasterKey::new([1; 32]))), Err(Error::Decrypt)), "a wrong key opens nothing");
    }

    /// `fuzz/seeds/capture_file/vp8` is a capture this writer writes (three VP8 frames, a
    /// sender report, a clean end), so the capture_file fuzz target starts past the header
    /// check. Rewritten with `UPDATE_SEEDS=1` when the format changes on purpose.
    #[test]
    fn the_fuzz_seed_is_what_the_writer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("seed.cap");
        let mut w = CaptureWriter::create(&p, header(), None).unwrap();
        crate::testing::append_vp8_frames(&mut w);
        w.append(&Record::SenderReport { at_us: 70_000, ssrc: 7, ntp: 1 << 40, rtp: 6000 }).unwrap();
        w.append(&Record::End { at_us: 100_000 }).unwrap();
        w.flush().unwrap();
        let made = std::fs::read(&p).unwrap();
        assert_eq!(
            crate::depack::frames(&read(&p, None).unwrap()).unwrap().frames.len(),
            3,
            "three frames come out of it"
        );
        let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/capture_file/vp8");
        if std::env::var_os("UPDATE_SEEDS").is_some() {
            std::fs::create_dir_all(seed.parent().unwrap()).unwrap();
            std::fs::write(&seed, &made).unwrap();
        }
        assert_eq!(std::fs::read(&seed).unwrap(), made, "run with UPDATE_SEEDS=1 to rewrite the seed");
    }
}
