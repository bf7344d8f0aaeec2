//! TLS in the server (issue 17): off localhost, browsers give the camera and microphone only to
//! HTTPS pages, and a county hospital should not need a reverse proxy for that. rustls does
//! the TLS; we only load certificates and hand connections to it.
//!
//! Two ways: certificate and key files (from the hospital's CA or a public one), reloaded on
//! SIGHUP without dropping calls; or `self-signed` for a LAN trial, made for the names and
//! addresses given, kept in the data directory and reused on restart, with its fingerprints
//! printed so that it can be trusted on purpose.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot keep the self-signed certificate in {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The serving configuration, swapped whole on a reload; connections take the current one.
pub struct Tls {
    current: RwLock<Arc<ServerConfig>>,
    cert: PathBuf,
    key: PathBuf,
    /// Made by us for a trial: a browser must be told to trust it; no HSTS then.
    pub self_signed: bool,
    /// Strict-Transport-Security is sent (`tls.hsts`, not for a trial certificate).
    pub hsts: bool,
}

/// What to tell an operator about the certificate in use.
#[derive(Debug, Clone)]
pub struct Fingerprints {
    /// SHA-256 of the certificate (what browsers show), as colon-separated hex.
    pub certificate: String,
    /// Base64 SHA-256 of the public key (Chromium's `--ignore-certificate-errors-spki-list`).
    pub spki: String,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let pem = read(cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.to_path_buf() });
    }
    let key_pem = read(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey { path: key.to_path_buf() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    // HTTP/1.1 only, as the plain listener (listen.rs says why).
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Tls {
    /// The configuration `tls` asks for, or `None` when TLS is off.
    pub fn load(tls: &TlsConfig, data_dir: &Path) -> Result<Option<Arc<Tls>>, TlsError> {
        let (cert, key, self_signed) = match tls.mode.as_str() {
            "files" => (tls.cert_file.clone(), tls.key_file.clone(), false),
            "self-signed" => {
                let (cert, key) = self_signed(&data_dir.join("tls"), &tls.names)?;
                (cert, key, true)
            }
            "acme" => {
                // Until the CA's certificate arrives (crate::acme), a stand-in for the names.
                let (cert, key) = (crate::acme::cert_path(data_dir), crate::acme::key_path(data_dir));
                if !cert.exists() || !key.exists() {
                    let (c, k) = self_signed(&data_dir.join("tls").join("acme-stand-in"), &tls.names)?;
                    let kept = |path: PathBuf| move |source| TlsError::Write { path, source };
                    std::fs::create_dir_all(crate::acme::dir(data_dir)).map_err(kept(cert.clone()))?;
                    std::fs::copy(&k, &key).map_err(kept(key.clone()))?;
                    std::fs::copy(&c, &cert).map_err(kept(cert.clone()))?;
                }
                (cert, key, false)
            }
            _ => return Ok(None),
        };
        let cfg = server_config(&cert, &key)?;
        let hsts = tls.hsts && !self_signed;
        Ok(Some(Arc::new(Tls { current: RwLock::new(Arc::new(cfg)), cert, key, self_signed, hsts })))
    }

    /// What new connections are served with.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// The same certificate for TURN over TLS: no HTTP ALPN (a TURN client offers
    /// `stun.turn` or nothing, RFC 7443).
    pub fn turn_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let mut cfg = (**self.current.read().unwrap_or_else(|p| p.into_inner())).clone();
        cfg.alpn_protocols = Vec::new();
        tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
    }

    /// Reads the files again (a renewed certificate): new connections get it, open ones keep
    /// theirs. A bad file leaves the one in use in place.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cfg = server_config(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cfg);
        Ok(())
    }

    pub fn fingerprints(&self) -> Result<Fingerprints, TlsError> {
        let pem = read(&self.cert)?;
        let der = CertificateDer::pem_slice_iter(&pem)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| TlsError::NoCertificate { path: self.cert.clone() })?;
        let cert: Vec<String> = Sha256::digest(der.as_ref()).iter().map(|b| format!("{b:02X}")).collect();
        let cert_ref = webpki::EndEntityCert::try_from(&der).map_err(|e| TlsError::Config(format!("{e:?}")))?;
        let spki = cert_ref.subject_public_key_info();
        use base64::Engine as _;
        Ok(Fingerprints {
            certificate: cert.join(":"),
            spki: base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki.as_ref())),
        })
    }
}

/// The trial certificate in `dir` for `names`: reused when it was made for the same names,
/// made (with its key, 0600) otherwise.
fn self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join("self-signed.pem");
    let key = dir.join("self-signed.key");
    let made_for = dir.join("self-signed.names");
    let mut names: Vec<String> = names.iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        names = vec!["localhost".into(), "127.0.0.1".into()];
    }
    let wanted = names.join("\n");
    if cert.exists() && key.exists() && std::fs::read_to_string(&made_for).is_ok_and(|n| n == wanted) {
        return Ok((cert, key));
    }
    let params = rcgen::CertificateParams::new(names.clone()).map_err(|e| TlsError::Generate(e.to_string()))?;
    let pair = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let made = params.self_signed(&pair).map_err(|e| TlsError::Generate(e.to_string()))?;
    let write = |path: &Path, body: &str| -> Result<(), TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.to_path_buf(), source })?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        opts.open(path)
            .and_then(|mut f| f.write_all(body.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(|source| TlsError::Write { path: path.to_path_buf(), source })
    };
    write(&key, &pair.serialize_pem())?;
    write(&cert, &made.pem())?;
    write(&made_for, &wanted)?;
    Ok((cert, key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_certificate_is_made_once_for_its_names_and_its_key_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsConfig {
            mode: "self-signed".into(),
            names: vec!["huizhen.lan".into(), "192.168.1.20".into()],
            ..TlsConfig::default()
        };
        let a = Tls::load(&tls, dir.path()).unwrap().unwrap();
        let fa = a.fingerprints().unwrap();
        assert_eq!(fa.certificate.len(), 32 * 3 - 1);
        let b = Tls::load(&tls, dir.path()).unwrap().unwrap();
        assert_eq!(b.fingerprints().unwrap().certificate, fa.certificate, "reused on restart");
        let other = TlsConfig { names: vec!["other.lan".into()], ..tls };
        let c = Tls::load(&other, dir.path()).unwrap().unwrap();
        assert_ne!(c.fingerprints().unwrap().certificate, fa.certificate, "made anew for other names");
        assert_eq!(c.fingerprints().unwrap().spki.len(), 44, "base64 of 32 bytes");
        assert!(c.reload().is_ok());
    }
}
