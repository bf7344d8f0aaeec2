//! A recording's capture file as start-up recovery finds it after a crash: any bytes, torn
//! anywhere. Read back, then depacketised into frames, as finalising does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("huizhen-fuzz-capture-{}", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(cap) = huizhen_recorder::capture::read(&path, None) {
        let _ = huizhen_recorder::depack::frames(&cap);
    }
});
