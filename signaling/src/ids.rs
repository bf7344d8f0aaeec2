//! Newtype identifiers: a `UserId` can never be passed where a `ConsultationId` is meant.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh id; UUIDv7 so ids sort by creation time.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().simple().to_string())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Ids arrive in URL paths: accept only what we would have generated (or a short
            /// ASCII name for CLI-minted rooms), so a path can never smuggle key separators.
            pub fn parse(s: &str) -> Option<Self> {
                let ok = !s.is_empty()
                    && s.len() <= 64
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                ok.then(|| Self(s.to_owned()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A user account.
    UserId
);
id_type!(
    /// A hospital or clinic.
    SiteId
);
id_type!(
    /// A consultation; its room on the signaling channel has the same id.
    ConsultationId
);
