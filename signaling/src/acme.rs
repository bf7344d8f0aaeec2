//! Certificates from an ACME CA (issue 17): `[tls] mode = "acme"` for a host with a public
//! name (Let's Encrypt by default, or the hospital's own ACME server). The protocol is
//! instant-acme's; ours is when to ask and where the answer goes. HTTP-01: the CA fetches
//! `http://<name>/.well-known/acme-challenge/<token>` from the plain-HTTP listener
//! (`tls.redirect_listen`, port 80), which answers challenges and redirects everything else.
//! Until the first certificate arrives HTTPS serves a self-signed stand-in for the names; the
//! certificate and key live in `data_dir/tls/acme/` and are renewed 30 days before they end
//! (or at once on SIGHUP), new connections getting the new one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};

use crate::config::TlsConfig;

/// Tokens the CA may fetch, and their key authorisations.
#[derive(Clone, Default)]
pub struct Challenges(Arc<Mutex<HashMap<String, String>>>);

impl Challenges {
    pub fn answer(&self, token: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(token).cloned()
    }
    fn set(&self, token: &str, key_authorization: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(token.to_owned(), key_authorization.to_owned());
    }
    fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    #[error("ACME: {0}")]
    Failed(String),
    #[error("ACME files in {path}: {error}")]
    Files { path: PathBuf, error: std::io::Error },
}

/// Where the account and the certificate are kept.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("acme")
}

pub fn cert_path(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("cert.pem")
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("key.pem")
}

/// Days the certificate in `cert` has left, if it is one a CA issued (a stand-in, issued by
/// itself, counts as none).
pub fn days_left(cert: &Path) -> Option<i64> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(cert).ok()?;
    let der = rustls::pki_types::CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
    let (_, x509) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    if x509.issuer() == x509.subject() {
        return None;
    }
    let left = x509.validity().not_after.timestamp() - jiff::Timestamp::now().as_second();
    Some(left / 86_400)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), AcmeError> {
    let files = |error| AcmeError::Files { path: path.to_owned(), error };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(files)?;
    }
    // Written aside and renamed: a crash never leaves half a key in place.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(files)?;
    std::fs::rename(&tmp, path).map_err(files)
}

async fn account(tls: &TlsConfig, data_dir: &Path) -> Result<Account, AcmeError> {
    let builder = || {
        if tls.acme_ca_root.as_os_str().is_empty() {
            Account::builder()
        } else {
            Account::builder_with_root(&tls.acme_ca_root)
        }
    };
    let saved = dir(data_dir).join("account.json");
    if let Ok(raw) = std::fs::read(&saved)
        && let Ok(credentials) = serde_json::from_slice::<AccountCredentials>(&raw)
    {
        return Ok(builder()?.from_credentials(credentials).await?);
    }
    let contact: Vec<String> = tls.acme_contact.iter().map(|c| format!("mailto:{c}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) = builder()?.create(&new, tls.acme_directory.clone(), None).await?;
    let raw = serde_json::to_vec(&credentials).map_err(|e| AcmeError::Failed(e.to_string()))?;
    write(&saved, &raw)?;
    Ok(account)
}

/// Orders a certificate for `tls.names` and writes it (chain, then key) into the ACME dir.
pub async fn obtain(tls: &TlsConfig, data_dir: &Path, challenges: &Challenges) -> Result<(), AcmeError> {
    let account = account(tls, data_dir).await?;
    let identifiers: Vec<Identifier> = tls
        .names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Identifier::Ip(ip),
            Err(_) => Identifier::Dns(n.clone()),
        })
        .collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        if authz.status == AuthorizationStatus::Valid {
            continue;
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| AcmeError::Failed("the CA offers no HTTP-01 challenge".into()))?;
        challenges.set(&challenge.token, challenge.key_authorization().as_str());
        challenge.set_ready().await?;
    }
    let retry = RetryPolicy::new().timeout(Duration::from_secs(90));
    let status = order.poll_ready(&retry).await;
    challenges.clear();
    match status? {
        OrderStatus::Ready => {}
        other => return Err(AcmeError::Failed(format!("the order is {other:?}, not ready: a challenge failed"))),
    }
    let key = order.finalize().await?;
    let chain = order.poll_certificate(&retry).await?;
    // The key first: a certificate without its key would not load.
    write(&key_path(data_dir), key.as_bytes())?;
    write(&cert_path(data_dir), chain.as_bytes())?;
    Ok(())
}

/// Keeps the certificate fresh for as long as the server runs: at once when there is none
/// from the CA yet, then when it has under 30 days left (checked twice a day), or when `now`
/// is notified (SIGHUP). After each new certificate `tls` reloads it.
pub fn keep_renewed(
    config: TlsConfig,
    data_dir: PathBuf,
    challenges: Challenges,
    tls: Arc<crate::tls::Tls>,
    now: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failures = 0u32;
        let mut forced = false;
        loop {
            let due = forced || days_left(&cert_path(&data_dir)).is_none_or(|d| d < 30);
            if due {
                match obtain(&config, &data_dir, &challenges).await {
                    Ok(()) => match tls.reload() {
                        Ok(()) => {
                            (failures, forced) = (0, false);
                            tracing::info!(names = ?config.names, "ACME certificate obtained and in use");
                        }
                        Err(e) => tracing::error!(error = %e, "ACME certificate obtained but not loaded"),
                    },
                    Err(e) => {
                        failures += 1;
                        tracing::error!(error = %e, "ACME certificate not obtained; trying again");
                    }
                }
            }
            // After a failure try again in 1, 2, 4 … 60 minutes; otherwise twice a day.
            let wait = if failures > 0 {
                Duration::from_secs(60 * u64::from(2u32.saturating_pow(failures - 1).min(60)))
            } else {
                Duration::from_secs(12 * 3600)
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = now.notified() => (forced, failures) = (true, 0),
            }
        }
    })
}
