//! Signed opinions (issue 15). A specialist signs with their password; the server then signs,
//! with its Ed25519 key, a canonical form of what the opinion says and about whom: the
//! report number, the consultation, the patient block, the opinion's text, the signer and the
//! time. Anyone with the public key (`GET /v1/signing-keys`) can check a report later, and a
//! stored opinion changed afterwards no longer verifies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::secret::SecretError;
use crate::config::Config;
use crate::consult::model::{Consultation, Opinion};
use crate::consult::patient::Patient;
use crate::ids::{ConsultationId, UserId};

const FILE_NAME: &str = "report-signing.key";
pub const ALGORITHM: &str = "ed25519";
/// Bytes signed are this, then the canonical JSON: a signature over an opinion can never be
/// taken for one over anything else this key signs later.
const DOMAIN: &[u8] = b"huizhen-opinion-v1\n";

/// The server's signature on one opinion, kept with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpinionSignature {
    pub key_id: String,
    pub algorithm: String,
    /// Base64 of the 64-byte signature.
    pub value: String,
    /// The signer's name when signing (an account's name may change later; what was signed
    /// may not).
    pub signer_name: String,
    /// The first 16 hex digits of the SHA-256 of the signature: what a printed report shows.
    pub fingerprint: String,
}

/// What a signature covers, in this order, as compact JSON (`serde_json` keeps field order).
#[derive(Serialize)]
struct Signed<'a> {
    report_number: Option<&'a str>,
    consultation: &'a ConsultationId,
    patient: Option<&'a Patient>,
    opinion: &'a str,
    signer: &'a UserId,
    signer_name: &'a str,
    signed_at: Timestamp,
}

fn canonical(c: &Consultation, o: &Opinion, signer_name: &str, signed_at: Timestamp) -> Vec<u8> {
    let signed = Signed {
        report_number: c.number.as_deref(),
        consultation: &c.id,
        patient: c.patient.as_ref(),
        opinion: &o.text,
        signer: &o.author,
        signer_name,
        signed_at,
    };
    let mut bytes = DOMAIN.to_vec();
    // Serialising our own plain struct cannot fail.
    bytes.extend(serde_json::to_vec(&signed).unwrap_or_default());
    bytes
}

/// The published form of a key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublicKey {
    pub key_id: String,
    pub algorithm: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

/// Whether one signed opinion still says what was signed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    /// The opinion, the patient block or the number changed since, or the signature was forged.
    Invalid,
    /// Signed with a key this server does not know.
    UnknownKey,
    /// Signed before signatures existed (a flag only).
    Unsigned,
}

pub struct ReportKey {
    id: String,
    key: SigningKey,
}

impl std::fmt::Debug for ReportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReportKey({})", self.id)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn seed_from_hex(text: &[u8]) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(text).ok()?.trim();
    if text.len() != 64 {
        return None;
    }
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(seed)
}

impl ReportKey {
    /// The configured key, or the one in `data_dir/report-signing.key`, made on first start.
    pub fn load_or_create(config: &Config) -> Result<Self, SecretError> {
        let a = &config.auth;
        let seed = if a.report_signing_key.trim().is_empty() {
            let stored = super::secret::stored(&config.data_dir, FILE_NAME)?;
            seed_from_hex(stored.as_bytes()).ok_or_else(|| SecretError::StoredTooShort {
                path: config.data_dir.join(FILE_NAME),
                len: stored.as_bytes().len(),
            })?
        } else {
            // Checked with the rest of the configuration.
            seed_from_hex(a.report_signing_key.as_bytes())
                .ok_or(SecretError::ConfiguredTooShort { len: a.report_signing_key.len() })?
        };
        Ok(Self::from_seed(seed, &a.report_key_id))
    }

    pub fn from_seed(seed: [u8; 32], id: &str) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let id = if id.is_empty() {
            format!("hz-{}", &hex(&Sha256::digest(key.verifying_key().as_bytes()))[..16])
        } else {
            id.to_owned()
        };
        Self { id, key }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key_id: self.id.clone(),
            algorithm: ALGORITHM.into(),
            public_key: B64.encode(self.key.verifying_key()),
        }
    }

    /// Signs opinion `o` of `c` as it stands (its `signed_at` set).
    pub fn sign(&self, c: &Consultation, o: &Opinion, signer_name: &str) -> Option<OpinionSignature> {
        let signed_at = o.signed_at?;
        let sig = self.key.sign(&canonical(c, o, signer_name, signed_at));
        Some(OpinionSignature {
            key_id: self.id.clone(),
            algorithm: ALGORITHM.into(),
            value: B64.encode(sig.to_bytes()),
            signer_name: signer_name.to_owned(),
            fingerprint: fingerprint(&sig.to_bytes()),
        })
    }

    /// Checks opinion `o` of `c` against its signature.
    pub fn verify(&self, c: &Consultation, o: &Opinion) -> Verdict {
        verify_with(&[self.public()], c, o)
    }
}

fn fingerprint(sig: &[u8]) -> String {
    hex(&Sha256::digest(sig))[..16].to_owned()
}

/// Checks opinion `o` of `c` against its signature with whichever of `keys` it names: what
/// `huizhen verify-report` does with a saved report and the published keys.
pub fn verify_with(keys: &[PublicKey], c: &Consultation, o: &Opinion) -> Verdict {
    let (Some(s), Some(signed_at)) = (&o.signature, o.signed_at) else {
        return Verdict::Unsigned;
    };
    let Some(k) = keys.iter().find(|k| k.key_id == s.key_id && s.algorithm == ALGORITHM) else {
        return Verdict::UnknownKey;
    };
    let key = B64
        .decode(&k.public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok());
    let sig = B64.decode(&s.value).ok().and_then(|b| <[u8; 64]>::try_from(b).ok()).map(|b| Signature::from_bytes(&b));
    match (key, sig) {
        (Some(key), Some(sig)) if key.verify(&canonical(c, o, &s.signer_name, signed_at), &sig).is_ok() => {
            Verdict::Valid
        }
        _ => Verdict::Invalid,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn signed() -> (ReportKey, Consultation) {
        let key = ReportKey::from_seed([9; 32], "");
        let mut c = crate::store::contract::scheduled(&UserId("doc".into()), &[], 0, 30);
        c.number = Some("HZ-2026-000001".into());
        c.opinions.push(Opinion {
            author: UserId("spec".into()),
            text: "考虑急性前壁心梗，建议急诊 PCI".into(),
            updated_at: Timestamp::UNIX_EPOCH,
            signed_at: Some(Timestamp::UNIX_EPOCH),
            signature: None,
        });
        let s = key.sign(&c, &c.opinions[0], "李心内").unwrap();
        c.opinions[0].signature = Some(s);
        (key, c)
    }

    #[test]
    fn a_signed_opinion_verifies_and_any_change_breaks_it() {
        let (key, c) = signed();
        assert!(key.id().starts_with("hz-") && key.id().len() == 19);
        assert_eq!(key.verify(&c, &c.opinions[0]), Verdict::Valid);
        let mut changed = c.clone();
        changed.opinions[0].text.push('。');
        assert_eq!(key.verify(&changed, &changed.opinions[0]), Verdict::Invalid);
        let mut renumbered = c.clone();
        renumbered.number = Some("HZ-2026-000002".into());
        assert_eq!(key.verify(&renumbered, &renumbered.opinions[0]), Verdict::Invalid);
        let mut renamed = c.clone();
        renamed.opinions[0].signature.as_mut().unwrap().signer_name = "别人".into();
        assert_eq!(key.verify(&renamed, &renamed.opinions[0]), Verdict::Invalid);
        let other = ReportKey::from_seed([1; 32], key.id());
        assert_eq!(other.verify(&c, &c.opinions[0]), Verdict::Invalid, "same id, another key");
        assert_eq!(verify_with(&[], &c, &c.opinions[0]), Verdict::UnknownKey);
        let mut flag_only = c.clone();
        flag_only.opinions[0].signature = None;
        assert_eq!(key.verify(&flag_only, &flag_only.opinions[0]), Verdict::Unsigned);
    }
}
