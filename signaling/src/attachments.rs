//! Files attached to a consultation (issue 15): the CT series, the ECG, the pathology report a
//! specialist must see. Each is streamed to disk (sealed when a key is set), its SHA-256
//! taken on the way, and kept only if its content is what it claims: a PDF, a JPEG or PNG, a
//! DICOM file that dicom-rs reads whole, or a zip of nothing but such DICOM files. Anything
//! else (a renamed program, a web page, a truncated DICOM, a zip bomb) is refused with a code
//! and nothing is left behind.
//!
//! Files live in `<dir>/<consultation>/<attachment id>`; a `.part` file is one being written
//! (or left by a crash, swept at start). The record lists them (`Consultation::attachments`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use huizhen_recorder::crypt::{MasterKey, OpeningReader, SealingWriter};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Pdf,
    Jpeg,
    Png,
    Dicom,
    /// A zip of DICOM files (a series or a study as modalities and PACS export them).
    DicomZip,
}

impl Kind {
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Pdf => "application/pdf",
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Dicom => "application/dicom",
            Kind::DicomZip => "application/zip",
        }
    }
}

/// What the checks learnt of a DICOM attachment: nothing that identifies the patient.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DicomInfo {
    /// DICOM files in it (1 for a single file).
    pub files: u32,
    /// Modalities seen (CT, MR, CR…).
    pub modalities: Vec<String>,
    /// Image frames in all files together.
    pub frames: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("only PDF, JPEG, PNG, DICOM files and zipped DICOM series are taken")]
    TypeRefused,
    #[error("the DICOM file cannot be read: {0}")]
    DicomInvalid(String),
    #[error("the zip cannot be read: {0}")]
    ZipInvalid(String),
    #[error("the zip holds {0}, which is not a DICOM file; only DICOM series are taken as zips")]
    ZipNotDicom(String),
    #[error("unpacked, the zip would exceed {max} bytes")]
    ZipTooLarge { max: u64 },
    #[error("the zip holds more than {max} files")]
    ZipTooManyFiles { max: usize },
    #[error("a DICOM file is larger than {max} bytes")]
    DicomTooLarge { max: u64 },
    #[error("cannot store the attachment: {0}")]
    Io(#[from] std::io::Error),
    #[error("the stored attachment does not open with the configured key")]
    Sealed,
}

impl AttachError {
    pub fn code(&self) -> &'static str {
        match self {
            AttachError::TypeRefused => "attachment_type_refused",
            AttachError::DicomInvalid(_) => "attachment_dicom_invalid",
            AttachError::ZipInvalid(_) => "attachment_zip_invalid",
            AttachError::ZipNotDicom(_) => "attachment_zip_not_dicom",
            AttachError::ZipTooLarge { .. } => "attachment_zip_too_large",
            AttachError::ZipTooManyFiles { .. } => "attachment_zip_too_many_files",
            AttachError::DicomTooLarge { .. } => "attachment_dicom_too_large",
            AttachError::Io(_) | AttachError::Sealed => "storage_error",
        }
    }
}

/// Limits on what a check will unpack and read.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// One DICOM file, read whole into memory by the parser.
    pub dicom_file_bytes: u64,
    /// Everything a zip unpacks to.
    pub zip_unpacked_bytes: u64,
    pub zip_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { dicom_file_bytes: 256 << 20, zip_unpacked_bytes: 2 << 30, zip_files: 5000 }
    }
}

/// The kind a file's first bytes show, if it is one we take.
pub fn sniff(head: &[u8]) -> Option<Kind> {
    if head.starts_with(b"%PDF-") {
        Some(Kind::Pdf)
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Kind::Jpeg)
    } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(Kind::Png)
    } else if head.get(128..132) == Some(b"DICM") {
        Some(Kind::Dicom)
    } else if head.starts_with(b"PK\x03\x04") {
        Some(Kind::DicomZip)
    } else {
        None
    }
}

/// Where a consultation's attachments live.
pub fn dir_of(root: &Path, consultation: &str) -> PathBuf {
    root.join(consultation)
}

/// Writes what it is given to `<path>.part`, sealed when there is a key, hashing the plain
/// bytes; `finish` syncs it and moves it into place.
pub struct Writer {
    part: PathBuf,
    path: PathBuf,
    out: Out,
    hash: Sha256,
    size: u64,
}

enum Out {
    Plain(std::fs::File),
    Sealed(Box<SealingWriter<std::fs::File>>),
}

impl Writer {
    pub fn create(path: PathBuf, key: Option<&MasterKey>) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let part = path.with_extension("part");
        let file = private_file(&part)?;
        let out = match key {
            Some(k) => Out::Sealed(Box::new(SealingWriter::new(file, k)?)),
            None => Out::Plain(file),
        };
        Ok(Self { part, path, out, hash: Sha256::new(), size: 0 })
    }

    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.size += bytes.len() as u64;
        match &mut self.out {
            Out::Plain(f) => f.write_all(bytes),
            Out::Sealed(w) => w.write_all(bytes),
        }
    }

    /// Size and SHA-256 (hex) of what was written, once it is durable under its name.
    pub fn finish(self) -> std::io::Result<(u64, String)> {
        let file = match self.out {
            Out::Plain(f) => f,
            Out::Sealed(w) => w.finish()?,
        };
        file.sync_all()?;
        std::fs::rename(&self.part, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        let hash = self.hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok((self.size, hash))
    }

    /// Gives up: nothing is left behind.
    pub fn abandon(self) {
        drop(self.out);
        let _ = std::fs::remove_file(&self.part);
    }
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Reads a stored attachment, opening it when it was sealed.
pub fn open(path: &Path, key: Option<&MasterKey>) -> Result<Box<dyn Read + Send>, AttachError> {
    let file = std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(path)?);
    Ok(match key {
        Some(k) => Box::new(OpeningReader::new(file, k).map_err(|_| AttachError::Sealed)?),
        None => Box::new(file),
    })
}

/// What a check found: the kind, and for DICOM a summary and its images in viewing order.
pub type Checked = (Kind, Option<DicomInfo>, Vec<crate::dicom_view::Image>);

/// Checks a stored attachment is what its first bytes say; the kind and, for DICOM, what it
/// holds. The caller removes the file when this fails.
///
/// The files of a zipped series are also kept one by one (sealed like the rest) in
/// [`files_dir`], so that showing one slice reads one file, not the zip up to it.
pub fn check(path: &Path, key: Option<&MasterKey>, limits: Limits) -> Result<Checked, AttachError> {
    let mut r = open(path, key)?;
    let mut head = Vec::with_capacity(132);
    r.by_ref().take(132).read_to_end(&mut head)?;
    let kind = sniff(&head).ok_or(AttachError::TypeRefused)?;
    let mut whole = std::io::Cursor::new(head).chain(r);
    let mut images = Vec::new();
    let info = match kind {
        Kind::Pdf | Kind::Jpeg | Kind::Png => None,
        Kind::Dicom => {
            let mut info = DicomInfo::default();
            read_dicom(&mut whole, limits.dicom_file_bytes, &mut info, &mut images)?;
            // The only file is the attachment itself: nothing more to keep.
            Some(info)
        }
        Kind::DicomZip => Some(check_zip(&mut whole, limits, &mut images, &files_dir(path), key)?),
    };
    Ok((kind, info, crate::dicom_view::ordered(images)))
}

/// One DICOM file, read whole by dicom-rs (a truncated one fails), at most `max` bytes.
fn read_dicom(
    r: &mut dyn Read,
    max: u64,
    info: &mut DicomInfo,
    images: &mut Vec<crate::dicom_view::Image>,
) -> Result<Vec<u8>, AttachError> {
    let mut bytes = Vec::new();
    r.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(AttachError::DicomTooLarge { max });
    }
    if bytes.get(128..132) != Some(b"DICM") {
        return Err(AttachError::DicomInvalid("no DICM preamble".into()));
    }
    let obj = crate::dicom_view::parse(&bytes)?;
    let image = crate::dicom_view::describe(&obj, info.files);
    if let Some(m) = &image.modality
        && !info.modalities.contains(m)
    {
        info.modalities.push(m.clone());
    }
    info.frames = info.frames.saturating_add(image.frames);
    info.files += 1;
    images.push(image);
    Ok(bytes)
}

fn check_zip(
    mut r: &mut dyn Read,
    limits: Limits,
    images: &mut Vec<crate::dicom_view::Image>,
    one_by_one: &Path,
    key: Option<&MasterKey>,
) -> Result<DicomInfo, AttachError> {
    let mut info = DicomInfo::default();
    let mut unpacked = 0u64;
    let mut files = 0usize;
    loop {
        let entry = zip::read::read_zipfile_from_stream(&mut r).map_err(|e| AttachError::ZipInvalid(e.to_string()))?;
        let Some(mut entry) = entry else { break };
        if entry.is_dir() {
            continue;
        }
        files += 1;
        if files > limits.zip_files {
            return Err(AttachError::ZipTooManyFiles { max: limits.zip_files });
        }
        let name = entry.name().to_owned();
        // What the entry unpacks to is counted as it comes, not taken from its header: a
        // header may lie about the size.
        let left = limits.zip_unpacked_bytes.saturating_sub(unpacked);
        let mut counted = Counting { inner: (&mut entry).take(left + 1), n: 0 };
        let mut head = Vec::with_capacity(132);
        (&mut counted).take(132).read_to_end(&mut head).map_err(|e| AttachError::ZipInvalid(e.to_string()))?;
        if head.get(128..132) != Some(b"DICM") {
            return Err(AttachError::ZipNotDicom(name));
        }
        let mut rest = std::io::Cursor::new(head).chain(&mut counted);
        let read = read_dicom(&mut rest, limits.dicom_file_bytes, &mut info, images);
        // The rest of the entry is read (and counted) whatever the parser left.
        std::io::copy(&mut counted, &mut std::io::sink()).map_err(|e| AttachError::ZipInvalid(e.to_string()))?;
        unpacked += counted.n;
        if unpacked > limits.zip_unpacked_bytes {
            return Err(AttachError::ZipTooLarge { max: limits.zip_unpacked_bytes });
        }
        let bytes = match read {
            Err(AttachError::DicomInvalid(_)) => return Err(AttachError::ZipNotDicom(name)),
            other => other?,
        };
        let mut w = Writer::create(one_by_one.join((info.files - 1).to_string()), key)?;
        w.write(&bytes)?;
        w.finish()?;
    }
    if files == 0 {
        return Err(AttachError::ZipInvalid("the zip is empty".into()));
    }
    Ok(info)
}

struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Where a zipped series' files are kept one by one.
pub fn files_dir(path: &Path) -> PathBuf {
    path.with_extension("files")
}

/// Where an attachment's image index is kept (`dicom_view`).
pub fn index_path(path: &Path) -> PathBuf {
    path.with_extension("index")
}

/// Removes an attachment and everything kept beside it.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(index_path(path));
    let _ = std::fs::remove_dir_all(files_dir(path));
}

/// Removes what a crash left half-made in `root`: `.part` files, and a series' files kept one
/// by one whose attachment never came to be.
pub fn sweep_partials(root: &Path) {
    let Ok(dirs) = std::fs::read_dir(root) else { return };
    for d in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(d.path()) else { continue };
        for f in files.flatten() {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "part") {
                let _ = std::fs::remove_file(&p);
            } else if p.extension().is_some_and(|e| e == "files") && !p.with_extension("").exists() {
                let _ = std::fs::remove_dir_all(&p);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_decide_and_a_renamed_program_or_page_is_refused() {
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(Kind::Pdf));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Kind::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(Kind::Png));
        let mut dicom = vec![0u8; 128];
        dicom.extend(b"DICM");
        assert_eq!(sniff(&dicom), Some(Kind::Dicom));
        assert_eq!(sniff(b"PK\x03\x04"), Some(Kind::DicomZip));
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01"), None);
        assert_eq!(sniff(b"MZ\x90\x00"), None);
        assert_eq!(sniff(b"<!DOCTYPE html><html>"), None);
    }

    #[test]
    fn a_file_written_sealed_reads_back_and_an_abandoned_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::new([3; 32]);
        let path = dir.path().join("c1").join("a1");
        let mut w = Writer::create(path.clone(), Some(&key)).unwrap();
        w.write(b"%PDF-1.7 hello").unwrap();
        let (size, hash) = w.finish().unwrap();
        assert_eq!(size, 14);
        assert_eq!(hash.len(), 64);
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(5).any(|w| w == b"hello"), "sealed on disk");
        let mut back = String::new();
        open(&path, Some(&key)).unwrap().read_to_string(&mut back).unwrap();
        assert_eq!(back, "%PDF-1.7 hello");
        assert_eq!(check(&path, Some(&key), Limits::default()).unwrap().0, Kind::Pdf);
        let w = Writer::create(dir.path().join("c1").join("a2"), None).unwrap();
        w.abandon();
        assert_eq!(std::fs::read_dir(dir.path().join("c1")).unwrap().count(), 1);
    }
}
