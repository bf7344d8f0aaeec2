//! `huizhen.toml` as an operator (or a broken deployment script) writes it: any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("huizhen-fuzz-config-{}.toml", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = huizhen::config::Config::load(Some(&path), std::iter::empty(), &[]);
});
