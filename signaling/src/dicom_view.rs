//! DICOM attachments shown in the browser (issue 15): each image rendered on the server to a
//! PNG at the window a radiologist asks for (lung, soft tissue, bone, brain, the file's own,
//! or a custom one), every frame of every file of a series, and thumbnails. dicom-rs decodes
//! the pixels (`dicom-pixeldata`, pure-Rust codecs); nothing here parses DICOM itself.
//!
//! An attachment's image index (which file, which frames, in what order) is made when it is
//! uploaded and kept beside it (`<id>.index`), so showing slice 200 of a series reads one file
//! of the zip, not all of them. It holds no patient data.

use std::io::Read;
use std::path::Path;

use dicom_pixeldata::image::{DynamicImage, ImageFormat};
use dicom_pixeldata::{ConvertOptions, PixelDecoder, VoiLutOption, WindowLevel};
use huizhen_recorder::crypt::MasterKey;
use serde::{Deserialize, Serialize};

use crate::attachments::{AttachError, Kind, open};

/// One image source: a DICOM file (of a zip: its place among the zip's files).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Place among the attachment's DICOM files, in the order they are stored.
    pub file: u32,
    pub frames: u32,
    pub rows: u16,
    pub columns: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<i64>,
    /// The file's own window, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
}

/// The presets a CT is read at (Hounsfield units).
pub fn preset(name: &str) -> Option<Window> {
    Some(match name {
        "lung" => Window { center: -600.0, width: 1500.0 },
        "soft_tissue" => Window { center: 40.0, width: 400.0 },
        "bone" => Window { center: 400.0, width: 1800.0 },
        "brain" => Window { center: 40.0, width: 80.0 },
        _ => return None,
    })
}

/// What one DICOM file tells of itself (no patient data), from its parsed object.
pub fn describe(obj: &dicom_object::DefaultDicomObject, file: u32) -> Image {
    let text = |name: &str| {
        obj.element_by_name(name)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let first = |name: &str| text(name).and_then(|v| v.split('\\').next().and_then(|x| x.trim().parse::<f64>().ok()));
    let window = match (first("WindowCenter"), first("WindowWidth")) {
        (Some(center), Some(width)) if width > 0.0 => Some(Window { center, width }),
        _ => None,
    };
    Image {
        file,
        frames: text("NumberOfFrames").and_then(|f| f.parse().ok()).unwrap_or(1).max(1),
        rows: text("Rows").and_then(|v| v.parse().ok()).unwrap_or(0),
        columns: text("Columns").and_then(|v| v.parse().ok()).unwrap_or(0),
        modality: text("Modality"),
        instance: text("InstanceNumber").and_then(|v| v.parse().ok()),
        window,
    }
}

/// The images in the order a viewer steps through them: by instance number, then as stored.
pub fn ordered(mut images: Vec<Image>) -> Vec<Image> {
    images.sort_by_key(|i| (i.instance.unwrap_or(i64::MAX), i.file));
    images
}

/// The bytes of DICOM file number `file` of the attachment at `path`.
pub fn file_bytes(
    path: &Path,
    key: Option<&MasterKey>,
    kind: Kind,
    file: u32,
    max: u64,
) -> Result<Vec<u8>, AttachError> {
    let mut r = open(path, key)?;
    let mut bytes = Vec::new();
    match kind {
        Kind::Dicom if file == 0 => {
            r.take(max + 1).read_to_end(&mut bytes)?;
        }
        Kind::DicomZip => {
            let mut seen = 0u32;
            loop {
                let entry =
                    zip::read::read_zipfile_from_stream(&mut r).map_err(|e| AttachError::ZipInvalid(e.to_string()))?;
                let Some(mut entry) = entry else {
                    return Err(AttachError::DicomInvalid(format!("no file {file} in this series")));
                };
                if entry.is_dir() {
                    continue;
                }
                if seen == file {
                    (&mut entry).take(max + 1).read_to_end(&mut bytes)?;
                    break;
                }
                seen += 1;
                std::io::copy(&mut entry, &mut std::io::sink())?;
            }
        }
        _ => return Err(AttachError::DicomInvalid(format!("no file {file} in this attachment"))),
    }
    if bytes.len() as u64 > max {
        return Err(AttachError::DicomTooLarge { max });
    }
    Ok(bytes)
}

pub fn parse(bytes: &[u8]) -> Result<dicom_object::DefaultDicomObject, AttachError> {
    dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .from_reader(bytes)
        .map_err(|e| AttachError::DicomInvalid(e.to_string()))
}

/// Frame `frame` of the parsed file as a PNG at `window` (the file's own, or min-max, when
/// `None`), at most `max_side` pixels on its longer side when given (a thumbnail).
pub fn render(
    obj: &dicom_object::DefaultDicomObject,
    frame: u32,
    window: Option<Window>,
    max_side: Option<u32>,
) -> Result<Vec<u8>, AttachError> {
    let bad = |e: &dyn std::fmt::Display| AttachError::DicomInvalid(e.to_string());
    let decoded = obj.decode_pixel_data_frame(frame).map_err(|e| bad(&e))?;
    let voi = match window {
        Some(w) => VoiLutOption::Custom(WindowLevel { center: w.center, width: w.width }),
        None => VoiLutOption::First,
    };
    let opts = ConvertOptions::new().with_voi_lut(voi).force_8bit();
    let mut img: DynamicImage = decoded.to_dynamic_image_with_options(0, &opts).map_err(|e| bad(&e))?;
    if let Some(side) = max_side {
        img = img.thumbnail(side, side);
    }
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, ImageFormat::Png).map_err(|e| bad(&e))?;
    Ok(png.into_inner())
}

/// The patient-identifying tags of a file, for those who may read the record.
pub fn patient_tags(obj: &dicom_object::DefaultDicomObject) -> serde_json::Value {
    let text = |name: &str| obj.element_by_name(name).ok().and_then(|e| e.to_str().ok()).map(|s| s.trim().to_owned());
    serde_json::json!({
        "patient_name": text("PatientName"),
        "patient_id": text("PatientID"),
        "patient_birth_date": text("PatientBirthDate"),
        "patient_sex": text("PatientSex"),
        "study_date": text("StudyDate"),
        "study_description": text("StudyDescription"),
        "series_description": text("SeriesDescription"),
        "institution": text("InstitutionName"),
    })
}
