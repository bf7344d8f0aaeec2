//! The token signing key: from config, or generated once and kept beside the data.
//!
//! Every token is HS256 over this key, so whoever knows it can sign an administrator's session.
//! A key under [`MIN_LEN`] bytes is never used. An empty or short `secret.key` (left, before this
//! code, by a crash between creating and writing the file on a first start) stops the server
//! with an explanation instead of being read back as the key: an empty HMAC key is public.
//! The file is now created whole or not at all (temporary file, fsync, link into place, fsync
//! of the directory), so a crash can no longer leave one behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// The shortest key accepted, in bytes (HS256's own block of 256 bits).
pub const MIN_LEN: usize = 32;

const FILE_NAME: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("jwt_secret is {len} bytes long; at least {MIN_LEN} are needed")]
    ConfiguredTooShort { len: usize },
    #[error(
        "{path} holds a signing key of {len} bytes; at least {MIN_LEN} are needed, so it is not \
         used (an empty or short key would let anyone sign tokens). It was probably left by an \
         interrupted first start. Stop every node using this data directory, delete the file \
         and start again: a new key is made and everyone signs in again"
    )]
    StoredTooShort { path: PathBuf, len: usize },
    #[error("cannot read or create the signing key {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// A signing key known to be at least [`MIN_LEN`] bytes long. `Debug` does not print it.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// Refuses keys under [`MIN_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_LEN {
            return Err(SecretError::ConfiguredTooShort { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} bytes)", self.0.len())
    }
}

/// The configured `jwt_secret`, or the key in `data_dir/secret.key`, created on first use.
pub fn load_or_create(config: &Config) -> Result<SigningKey, SecretError> {
    if !config.jwt_secret.is_empty() {
        return SigningKey::new(config.jwt_secret.as_bytes());
    }
    stored(&config.data_dir, FILE_NAME)
}

/// The key kept in `dir/name` (64 hex digits, as text), created with a fresh random key on
/// first use: the token key, and the report signing key's seed (`report_key`).
pub fn stored(dir: &Path, name: &str) -> Result<SigningKey, SecretError> {
    let path = dir.join(name);
    let io = |source| SecretError::Io { path: path.clone(), source };
    match read_stored(&path)? {
        Some(key) => Ok(key),
        None => {
            std::fs::create_dir_all(dir).map_err(io)?;
            create(dir, name, &path).map_err(io)?;
            // Another process may have won the race to create it: whatever is on disk is the key.
            read_stored(&path)?.ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))
        }
    }
}

/// `None` when there is no file; an error when it cannot be read or is too short.
fn read_stored(path: &Path) -> Result<Option<SigningKey>, SecretError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SecretError::Io { path: path.to_path_buf(), source }),
    };
    let key = text.trim_ascii();
    if key.len() < MIN_LEN {
        return Err(SecretError::StoredTooShort { path: path.to_path_buf(), len: key.len() });
    }
    Ok(Some(SigningKey(key.to_vec())))
}

/// Writes a fresh random key to a private temporary file, syncs it, then links it into place.
/// A link (unlike a rename) never replaces a key another process put there first.
fn create(dir: &Path, name: &str, path: &Path) -> std::io::Result<()> {
    let mut bytes = [0u8; MIN_LEN];
    rand::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut suffix = [0u8; 8];
    rand::fill(&mut suffix);
    let tmp = dir.join(format!(".{name}.{}.tmp", u64::from_le_bytes(suffix)));
    let written = write_private(&tmp, hex.as_bytes()).and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    written?;
    std::fs::File::open(dir)?.sync_all()
}

fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content)?;
    f.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config { data_dir: dir.to_path_buf(), ..Config::default() }
    }

    #[test]
    fn an_empty_or_short_key_file_is_refused_not_used() {
        for content in ["", "\n", "   \n", "0123456789abcdef0123456789abcde"] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(FILE_NAME), content).unwrap();
            let err = load_or_create(&config(dir.path())).unwrap_err();
            assert!(matches!(err, SecretError::StoredTooShort { .. }), "{content:?}: {err}");
            // The file is left for the operator to look at, not silently replaced.
            assert_eq!(std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(), content);
        }
    }

    #[test]
    fn a_new_key_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(&config(dir.path())).unwrap();
        assert_eq!(first.as_bytes().len(), 2 * MIN_LEN);
        let again = load_or_create(&config(dir.path())).unwrap();
        assert_eq!(first.as_bytes(), again.as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
    }

    #[test]
    fn racing_first_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| load_or_create(&config(dir.path())).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k.as_bytes() == keys[0].as_bytes()));
    }

    #[test]
    fn a_short_configured_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config { jwt_secret: "short".into(), ..config(dir.path()) };
        assert!(matches!(load_or_create(&c), Err(SecretError::ConfiguredTooShort { len: 5 })));
        let c = Config { jwt_secret: "x".repeat(32), ..config(dir.path()) };
        assert_eq!(load_or_create(&c).unwrap().as_bytes(), "x".repeat(32).as_bytes());
    }
}
