//! The token signing secret: from config, or generated once and kept beside the data.

use std::io::Write;
use std::path::Path;

use crate::config::Config;

pub fn load_or_create(config: &Config) -> std::io::Result<Vec<u8>> {
    if !config.jwt_secret.is_empty() {
        return Ok(config.jwt_secret.as_bytes().to_vec());
    }
    let path = config.data_dir.join("secret.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let s = existing.trim();
        if s.len() >= 32 {
            return Ok(s.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &hex)?;
    // Another process may have won the race: whatever is on disk is the secret.
    Ok(std::fs::read_to_string(&path)?.trim().as_bytes().to_vec())
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(content.as_bytes())?;
            f.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
