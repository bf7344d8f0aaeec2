//! Attachments over the real API (issue 15): what a county doctor uploads is kept only if its
//! content is a PDF, an image, a DICOM file dicom-rs reads whole, or a zip of DICOM files; a
//! renamed program, a web page, a truncated DICOM, a zip with anything else, a zip bomb and a
//! file over the quota are each refused with a code, and nothing is left on disk. Sealed at
//! rest with a key; every download audited. Test files are made here.
#![allow(clippy::unwrap_used)]

use std::io::Write;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use huizhen_tests::{Api, TestServer};
use serde_json::{Value, json};
use sha2::Digest;

/// A 16×16 CT slice with a patient name, as a modality writes one.
fn ct_slice(n: u32) -> Vec<u8> {
    let pixels: Vec<u16> = (0..256u16).map(|i| i * 8).collect();
    let obj = InMemDicomObject::from_element_iter([
        DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2")),
        DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(format!("1.2.826.0.1.3680043.9.7433.1.{n}")),
        ),
        DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("Ouyang^Xiaoming")),
        DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("CT")),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(16u16)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(16u16)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(12u16)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(11u16)),
        DataElement::new(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0u16)),
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
        DataElement::new(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, PrimitiveValue::from("MONOCHROME2")),
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())),
    ]);
    let file = obj.with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1")).unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

fn zipped(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap().into_inner()
}

async fn upload(api: &Api, session: &str, id: &str, name: &str, bytes: Vec<u8>) -> huizhen_tests::Resp {
    let path = format!("/v1/consultations/{id}/attachments?name={}", name);
    api.raw("POST", &path, Some(session), "application/octet-stream", bytes).await
}

/// Every file under `dir`.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn only_what_the_content_shows_is_kept_and_nothing_refused_stays_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = huizhen_tests::test_config(dir.path());
    config.recording.encryption_key = "4d".repeat(32);
    config.attachments.max_bytes_per_consultation = 4 << 20;
    config.attachments.max_zip_unpacked_bytes = 8 << 20;
    let srv = TestServer::start_config(config).await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "routine", "summary": "胸痛" });
    let c = api.post("/v1/consultations", &doctor, body).await.ok();
    let id = c["id"].as_str().unwrap().to_owned();
    let store = dir.path().join("attachments").join(&id);

    // A PDF: kept, with its hash; downloaded as it was; sealed on disk.
    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\nECG 12-lead report".to_vec();
    let a = upload(&api, &doctor, &id, "ecg.pdf", pdf.clone()).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let a = a.ok();
    assert_eq!(a["kind"], "pdf");
    let hex: String = sha2::Sha256::digest(&pdf).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(a["sha256"], hex);
    let url = srv.url(&format!("/v1/consultations/{id}/attachments/{}", a["id"].as_str().unwrap()));
    let got = reqwest::Client::new().get(&url).bearer_auth(&doctor).send().await.unwrap();
    assert_eq!(got.headers()["content-type"], "application/pdf");
    assert_eq!(got.bytes().await.unwrap().to_vec(), pdf);
    for f in files(&store) {
        let raw = std::fs::read(&f).unwrap();
        assert!(!raw.windows(12).any(|w| w == b"ECG 12-lead "), "sealed at rest: {}", f.display());
    }

    // A DICOM slice, and a zipped series of three: read whole by dicom-rs.
    let d = upload(&api, &doctor, &id, "ct-1.dcm", ct_slice(1)).await.ok();
    assert_eq!((d["kind"].clone(), d["dicom"]["files"].clone()), (json!("dicom"), json!(1)));
    assert_eq!(d["dicom"]["modalities"], json!(["CT"]));
    let series = zipped(&[("S1/IM1", ct_slice(1)), ("S1/IM2", ct_slice(2)), ("S1/IM3", ct_slice(3))]);
    let z = upload(&api, &doctor, &id, "series.zip", series).await.ok();
    assert_eq!((z["kind"].clone(), z["dicom"]["files"].clone()), (json!("dicom_zip"), json!(3)));
    // The attachments, the images' index of the two DICOM ones, and the series' three files
    // kept one by one.
    let kept = files(&store).len();
    assert_eq!(kept, 3 + 2 + 3, "{:?}", files(&store));

    // Refused, each with its code, and nothing left behind.
    let mut elf = b"\x7fELF\x02\x01\x01\x00".to_vec();
    elf.resize(4096, 0);
    upload(&api, &doctor, &id, "ct-2.dcm", elf.clone()).await.expect(415, "attachment_type_refused");
    let mut exe = b"MZ\x90\x00".to_vec();
    exe.resize(4096, 0);
    upload(&api, &doctor, &id, "report.pdf", exe).await.expect(415, "attachment_type_refused");
    upload(&api, &doctor, &id, "report.html", b"<!DOCTYPE html><script>alert(1)</script>".to_vec())
        .await
        .expect(415, "attachment_type_refused");
    let whole = ct_slice(4);
    let truncated = whole[..whole.len() - 300].to_vec();
    upload(&api, &doctor, &id, "cut.dcm", truncated).await.expect(422, "attachment_dicom_invalid");
    let with_program = zipped(&[("S1/IM1", ct_slice(5)), ("viewer.exe", elf)]);
    let e = upload(&api, &doctor, &id, "cd.zip", with_program).await.expect(422, "attachment_zip_not_dicom");
    assert!(e["message"].as_str().unwrap().contains("viewer.exe"));
    // A bomb: a DICOM header, then 64 MB of zeros that deflate to almost nothing.
    let mut bomb = ct_slice(6)[..132].to_vec();
    bomb.resize(64 << 20, 0);
    let bomb = zipped(&[("S1/IM1", bomb)]);
    assert!(bomb.len() < 1 << 20, "the bomb itself is small: {}", bomb.len());
    upload(&api, &doctor, &id, "bomb.zip", bomb).await.expect(422, "attachment_zip_too_large");
    // Over the consultation's quota (4 MB here), declared or not.
    let big = vec![0x25u8; 5 << 20];
    upload(&api, &doctor, &id, "big.pdf", big).await.expect(413, "attachment_quota_exceeded");
    upload(&api, &doctor, &id, "", b"%PDF-1.4".to_vec()).await.expect(422, "attachment_name_invalid");
    // A 2 GB upload is refused on its declared length, before its bytes are read; one sent
    // without a length (chunked) is cut off at the quota as its bytes come.
    let path = format!("/v1/consultations/{id}/attachments?name=big.zip");
    let status = raw_upload(srv.addr, &path, &doctor, Some(2 << 30), 64 << 10).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    let status = raw_upload(srv.addr, &path, &doctor, None, 6 << 20).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(files(&store).len(), kept, "nothing refused stays on disk: {:?}", files(&store));
    for f in files(&store) {
        let raw = std::fs::read(&f).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"Ouyang"), "no patient name in the clear: {}", f.display());
    }

    // The series as images: in viewing order, rendered at the window asked for.
    let aid = z["id"].as_str().unwrap();
    let base = format!("/v1/consultations/{id}/attachments/{aid}/images");
    let index = api.get(&base, &doctor).await.ok();
    assert_eq!(index["images"].as_array().unwrap().len(), 3);
    assert_eq!(index["images"][0]["rows"], 16);
    assert_eq!(index["presets"][0]["name"], "lung");
    let png = |q: &str| {
        let url = srv.url(&format!("{base}/{q}"));
        let token = doctor.clone();
        async move {
            let r = reqwest::Client::new().get(&url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            assert_eq!(r.headers()["content-type"], "image/png");
            image::load_from_memory(&r.bytes().await.unwrap()).unwrap().to_luma8()
        }
    };
    // A window over the slice's whole ramp (0..2040) maps its first pixel dark, its last light.
    let full = png("0?window=custom&center=1020&width=2040").await;
    assert_eq!(full.dimensions(), (16, 16));
    assert!(full.get_pixel(0, 0)[0] < 10 && full.get_pixel(15, 15)[0] > 245, "{:?}", full.as_raw());
    // Bone and brain windows show different things of the same slice.
    assert_ne!(png("1?window=bone").await.as_raw(), png("1?window=brain").await.as_raw());
    let thumb = png("2?thumb=true").await;
    assert!(thumb.width() <= 128 && thumb.height() <= 128);
    api.get(&format!("{base}/0?window=custom&center=10"), &doctor).await.expect(422, "window_invalid");
    api.get(&format!("{base}/0?window=sunset"), &doctor).await.expect(422, "window_invalid");
    api.get(&format!("{base}/0?frame=1"), &doctor).await.expect(404, "image_not_found");
    api.get(&format!("{base}/9"), &doctor).await.expect(404, "image_not_found");
    api.get(&format!("/v1/consultations/{id}/attachments/{}/images", a["id"].as_str().unwrap()), &doctor)
        .await
        .expect(404, "attachment_not_dicom");
    // The file's patient tags, for those who may read the record.
    let tags = api.get(&format!("{base}/0/tags"), &doctor).await.ok();
    assert_eq!(tags["patient_name"], "Ouyang^Xiaoming");

    // Only those who take part (and admins) read them; each download is audited.
    let west = api.login("doctor-west").await;
    let other = reqwest::Client::new().get(&url).bearer_auth(&west).send().await.unwrap();
    assert_eq!(other.status(), 404);
    api.get(&format!("{base}/0"), &west).await.expect(404, "consultation_not_found");
    let list = api.get(&format!("/v1/consultations/{id}"), &doctor).await.ok();
    assert_eq!(list["attachments"].as_array().unwrap().len(), 3);
    assert_eq!(list["attachments"][0]["name"], "ecg.pdf");
    let admin = api.login_as("admin", &srv.admin_password).await;
    let audit: Value = api.get(&format!("/v1/audit?consultation={id}&limit=100"), &admin).await.ok();
    let text = audit.to_string();
    assert_eq!(text.matches("consultation.attach").count(), 3, "{text}");
    assert!(text.contains("attachment.download"));
    assert!(!text.contains("ecg.pdf") && !text.contains("Ouyang"), "no names in the trail");
    srv.stop().await;
}

/// Sends an upload by hand: `declared` as Content-Length (or chunked without it), then `send`
/// bytes of a PDF-looking body, as far as the server reads them; returns the status line.
async fn raw_upload(addr: std::net::SocketAddr, path: &str, token: &str, declared: Option<u64>, send: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let length = match declared {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n{length}\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'%'; 64 << 10];
    let mut sent = 0;
    // The server may answer and stop reading at any point: a failed write ends the sending.
    while sent < send {
        let w = if declared.is_some() {
            s.write_all(&chunk).await
        } else {
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            s.write_all(&framed).await
        };
        if w.is_err() {
            break;
        }
        sent += chunk.len();
    }
    if declared.is_none() {
        let _ = s.write_all(b"0\r\n\r\n").await;
    }
    let mut answer = vec![0u8; 4096];
    let n = s.read(&mut answer).await.unwrap_or(0);
    String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or("").to_owned()
}
