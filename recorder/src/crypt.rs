//! Encryption at rest. One master key (configured) never touches a file: each file has a
//! random salt in its header and its own key, HMAC-SHA256(master, salt). Records and chunks
//! are sealed with AES-256-GCM under that key with a counter nonce (unique per file key, so
//! no nonce is ever reused), and the last chunk of a stream is bound as last, so truncation is
//! detected rather than served.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{Read, Write};

use crate::Error;

pub const KEY_LEN: usize = 32;
pub const SALT_LEN: usize = 16;
/// Plaintext bytes per sealed chunk of a finished file.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const STREAM_MAGIC: &[u8; 8] = b"HZENC1\n\0";

#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s.len() != KEY_LEN * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::BadKey);
        }
        let mut k = [0u8; KEY_LEN];
        for (i, byte) in k.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).map_err(|_| Error::BadKey)?;
        }
        Ok(Self(k))
    }

    pub fn file_key(&self, salt: &[u8; SALT_LEN]) -> FileKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"huizhen-recording-file-key");
        mac.update(salt);
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        FileKey(Aes256Gcm::new(&key.into()))
    }
}

pub fn random_salt() -> [u8; SALT_LEN] {
    let mut s = [0u8; SALT_LEN];
    rand::fill(&mut s);
    s
}

pub struct FileKey(Aes256Gcm);

fn nonce(counter: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n.into()
}

impl FileKey {
    pub fn seal(&self, counter: u64, last: bool, plain: &[u8]) -> Vec<u8> {
        let aad = [u8::from(last)];
        self.0
            .encrypt(&nonce(counter), Payload { msg: plain, aad: &aad })
            .expect("AES-GCM encryption of a bounded buffer")
    }

    pub fn open(&self, counter: u64, last: bool, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let aad = [u8::from(last)];
        self.0.decrypt(&nonce(counter), Payload { msg: sealed, aad: &aad }).map_err(|_| Error::Decrypt)
    }
}

/// Writes a sealed stream: magic, salt, then chunks of `CHUNK` plaintext bytes; `finish`
/// seals the last (possibly empty) chunk as last.
pub struct SealingWriter<W: Write> {
    inner: W,
    key: FileKey,
    buf: Vec<u8>,
    counter: u64,
}

impl<W: Write> SealingWriter<W> {
    pub fn new(mut inner: W, master: &MasterKey) -> std::io::Result<Self> {
        let salt = random_salt();
        inner.write_all(STREAM_MAGIC)?;
        inner.write_all(&salt)?;
        Ok(Self { inner, key: master.file_key(&salt), buf: Vec::with_capacity(CHUNK), counter: 0 })
    }

    fn seal_chunk(&mut self, last: bool) -> std::io::Result<()> {
        let sealed = self.key.seal(self.counter, last, &self.buf);
        self.counter += 1;
        self.buf.clear();
        self.inner.write_all(&sealed)
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.seal_chunk(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealingWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            // Sealed as "not last" only once more data follows, so a stream that ends on a
            // chunk boundary still ends with a sealed-as-last (empty) chunk.
            self.seal_chunk(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a sealed stream back, chunk by chunk; every chunk is authenticated before any of it
/// is handed out, and a stream cut short is an error, never a shorter file.
pub struct OpeningReader<R: Read> {
    inner: R,
    key: FileKey,
    counter: u64,
    /// The next sealed chunk, read ahead to know whether the current one is the last.
    ahead: Option<Vec<u8>>,
    plain: Vec<u8>,
    pos: usize,
    done: bool,
}

fn read_full<R: Read>(r: &mut R, want: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(want);
    r.take(want as u64).read_to_end(&mut out)?;
    Ok(out)
}

impl<R: Read> OpeningReader<R> {
    pub fn new(mut inner: R, master: &MasterKey) -> Result<Self, Error> {
        let mut head = [0u8; 8 + SALT_LEN];
        inner.read_exact(&mut head).map_err(|_| Error::NotSealed)?;
        if &head[..8] != STREAM_MAGIC {
            return Err(Error::NotSealed);
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&head[8..]);
        let first = read_full(&mut inner, CHUNK + TAG)?;
        Ok(Self {
            inner,
            key: master.file_key(&salt),
            counter: 0,
            ahead: Some(first),
            plain: Vec::new(),
            pos: 0,
            done: false,
        })
    }

    fn next_chunk(&mut self) -> std::io::Result<bool> {
        let Some(cur) = self.ahead.take() else { return Ok(false) };
        let next = if cur.len() == CHUNK + TAG { read_full(&mut self.inner, CHUNK + TAG)? } else { Vec::new() };
        let last = next.is_empty();
        self.plain = self
            .key
            .open(self.counter, last, &cur)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        self.pos = 0;
        self.counter += 1;
        if !last {
            self.ahead = Some(next);
        }
        Ok(true)
    }
}

impl<R: Read> Read for OpeningReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done || !self.next_chunk()? {
                self.done = true;
                return Ok(0);
            }
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn roundtrip(len: usize) {
        let key = MasterKey::new([7; 32]);
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut w = SealingWriter::new(Vec::new(), &key).unwrap();
        w.write_all(&data).unwrap();
        let sealed = w.finish().unwrap();
        if len > 64 {
            assert!(!sealed.windows(64).any(|w| w == &data[..64]), "plaintext visible in the sealed stream");
        }
        let mut back = Vec::new();
        OpeningReader::new(&sealed[..], &key).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        // Cut off a whole chunk, or one byte: an error, never a shorter file.
        for cut in [CHUNK + TAG, 1] {
            if sealed.len() > 24 + cut {
                let short = &sealed[..sealed.len() - cut];
                let mut out = Vec::new();
                assert!(OpeningReader::new(short, &key).unwrap().read_to_end(&mut out).is_err(), "len {len} cut {cut}");
            }
        }
        let wrong = MasterKey::new([8; 32]);
        let mut out = Vec::new();
        assert!(OpeningReader::new(&sealed[..], &wrong).unwrap().read_to_end(&mut out).is_err());
    }

    #[test]
    fn sealed_streams_round_trip_and_detect_truncation() {
        for len in [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            roundtrip(len);
        }
    }

    #[test]
    fn hex_keys() {
        assert!(MasterKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::from_hex("abc").is_err());
        assert!(MasterKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
