//! TURN credentials by the REST shared-secret scheme coturn implements
//! (draft-uberti-behave-turn-rest-00): username `expiry:identity`, password
//! base64(HMAC-SHA1(secret, username)). Nothing is stored: coturn recomputes and checks expiry.

use base64::Engine;
use hmac::{Hmac, Mac};

pub fn credentials(secret: &str, identity: &str, expires_unix: i64) -> (String, String) {
    let username = format!("{expires_unix}:{identity}");
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let password = match Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(username.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    (username, password)
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_coturn_rest_scheme() {
        // Reference value computed independently (Python hmac/hashlib).
        let (u, p) = super::credentials("north-wind-secret", "u1", 1_900_000_000);
        assert_eq!(u, "1900000000:u1");
        assert_eq!(p, "5ZImESiopzxUeNjryqwmeCPXtIc=");
    }
}
