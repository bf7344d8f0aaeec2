//! An uploaded attachment as a county PC (or an attacker) sends it: any bytes, checked as the
//! server checks uploads (`attachments::check`: the kind by content, dicom-rs reading a DICOM
//! file whole, a zip unpacked as a stream with its bytes counted). Small limits keep each run
//! short; the point is that nothing panics or hangs whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("huizhen-fuzz-attachment-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("a");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let limits = huizhen::attachments::Limits { dicom_file_bytes: 1 << 20, zip_unpacked_bytes: 4 << 20, zip_files: 64 };
    let _ = huizhen::attachments::check(&path, None, limits);
    huizhen::attachments::remove(&path);
});
