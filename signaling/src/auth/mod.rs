//! Passwords, tokens and grants.
//!
//! Three kinds of JWT, all HS256 with the server's secret, told apart by `typ`:
//! `session` (API calls, minutes), `refresh` (gets a new session, hours) and `room`
//! (opens the signaling socket of one consultation, with grants).

pub mod password;
pub mod report_key;
pub mod secret;
pub mod turn;

use jiff::Timestamp;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::consult::model::Role;
use crate::ids::{ConsultationId, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    Session,
    Refresh,
    Room,
    /// A short-lived link to one recording file, so the browser can stream it to disk.
    Download,
    /// A one-time link for a guest without an account (what the inviter hands out).
    GuestLink,
    /// What a guest holds once they came through their link: asks for room tokens.
    Guest,
    /// An encoder's WHIP bearer token: publishes into one consultation (`model::EncoderLink`).
    Encoder,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionClaims {
    pub sub: UserId,
    pub role: Role,
    pub typ: TokenType,
    /// The user's token generation when issued; a bump (logout, password change) revokes.
    #[serde(rename = "gen")]
    pub generation: u64,
    pub iat: i64,
    pub exp: i64,
}

/// What a room token lets its holder do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grants {
    pub can_publish: bool,
    pub can_subscribe: bool,
    pub can_publish_data: bool,
    pub can_record: bool,
    pub room_admin: bool,
    pub hidden: bool,
    /// In a broadcast's audience (the trainees of a teaching session): shown to the hosts,
    /// and to everyone else only while holding the floor (protocol.md §Audience).
    pub audience: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoomClaims {
    /// The participant's identity in the room: a user id, or a name given to `huizhen token`.
    pub sub: String,
    pub name: String,
    pub room: ConsultationId,
    pub grants: Grants,
    pub typ: TokenType,
    pub iat: i64,
    pub exp: i64,
    /// Issued by `/join` to the account `sub`: the socket checks that account's rights again
    /// when it opens. Tokens from `huizhen token` name no account and carry what the operator
    /// gave them.
    #[serde(default)]
    pub account: bool,
    /// Issued to a guest who came through this link (its id): the socket checks again that
    /// the link was not withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<String>,
}

/// A guest link (`GuestLink`) or a guest's own token (`Guest`): which link, into which
/// consultation. Whether the link still works is in the record, not here.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GuestClaims {
    /// The link's id.
    pub sub: String,
    pub room: ConsultationId,
    pub typ: TokenType,
    pub iat: i64,
    pub exp: i64,
}

/// One recording file, for one user, for a minute: what a download link carries. The user's
/// token generation is in it too, so signing out everywhere also voids links.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DownloadClaims {
    pub sub: UserId,
    #[serde(rename = "gen")]
    pub generation: u64,
    pub consultation: ConsultationId,
    pub recording: String,
    pub file: String,
    pub typ: TokenType,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
    #[error("wrong kind of token")]
    WrongType,
}

#[derive(Debug, thiserror::Error)]
#[error("signing a token failed: {0}")]
pub struct SignError(String);

pub struct Keys {
    enc: EncodingKey,
    dec: DecodingKey,
}

impl Keys {
    pub fn from_secret(secret: &secret::SigningKey) -> Self {
        let secret = secret.as_bytes();
        Self { enc: EncodingKey::from_secret(secret), dec: DecodingKey::from_secret(secret) }
    }

    /// HS256 over our own claims does not fail; if it ever did, the caller gets an error, not
    /// an empty string handed out as a token.
    fn encode<T: Serialize>(&self, claims: &T) -> Result<String, SignError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.enc).map_err(|e| SignError(e.to_string()))
    }

    fn decode<T: for<'de> Deserialize<'de>>(&self, token: &str) -> Result<T, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        v.required_spec_claims = ["exp", "sub"].into_iter().map(String::from).collect();
        jsonwebtoken::decode::<T>(token, &self.dec, &v).map(|d| d.claims).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })
    }

    pub fn session(
        &self,
        user: &UserId,
        role: Role,
        generation: u64,
        typ: TokenType,
        ttl_secs: u64,
        now: Timestamp,
    ) -> Result<(String, Timestamp), SignError> {
        let exp = now.as_second() + ttl_secs as i64;
        let claims = SessionClaims { sub: user.clone(), role, typ, generation, iat: now.as_second(), exp };
        Ok((self.encode(&claims)?, Timestamp::from_second(exp).unwrap_or(now)))
    }

    pub fn verify_session(&self, token: &str, typ: TokenType) -> Result<SessionClaims, TokenError> {
        let c: SessionClaims = self.decode(token)?;
        if c.typ != typ {
            return Err(TokenError::WrongType);
        }
        Ok(c)
    }

    /// A room token for an identity that is no account (`huizhen token`, tests, load).
    pub fn room(
        &self,
        identity: &str,
        name: &str,
        room: &ConsultationId,
        grants: Grants,
        ttl_secs: u64,
        now: Timestamp,
    ) -> Result<(String, Timestamp), SignError> {
        self.room_token(identity, name, room, grants, ttl_secs, now, false, None)
    }

    /// A room token for the account `identity`, whose rights the socket checks again.
    pub fn user_room(
        &self,
        identity: &str,
        name: &str,
        room: &ConsultationId,
        grants: Grants,
        ttl_secs: u64,
        now: Timestamp,
    ) -> Result<(String, Timestamp), SignError> {
        self.room_token(identity, name, room, grants, ttl_secs, now, true, None)
    }

    /// A room token for the guest who came through `link`.
    #[allow(clippy::too_many_arguments)]
    pub fn guest_room(
        &self,
        identity: &str,
        name: &str,
        room: &ConsultationId,
        grants: Grants,
        ttl_secs: u64,
        now: Timestamp,
        link: &str,
    ) -> Result<(String, Timestamp), SignError> {
        self.room_token(identity, name, room, grants, ttl_secs, now, false, Some(link.to_owned()))
    }

    /// A guest link (`TokenType::GuestLink`) or a guest's own token (`TokenType::Guest`),
    /// valid until `expires_at`.
    pub fn guest(
        &self,
        link: &str,
        room: &ConsultationId,
        typ: TokenType,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<String, SignError> {
        let claims = GuestClaims {
            sub: link.to_owned(),
            room: room.clone(),
            typ,
            iat: now.as_second(),
            exp: expires_at.as_second(),
        };
        self.encode(&claims)
    }

    pub fn verify_guest(&self, token: &str, typ: TokenType) -> Result<GuestClaims, TokenError> {
        let c: GuestClaims = self.decode(token)?;
        if c.typ != typ {
            return Err(TokenError::WrongType);
        }
        Ok(c)
    }

    #[allow(clippy::too_many_arguments)]
    fn room_token(
        &self,
        identity: &str,
        name: &str,
        room: &ConsultationId,
        grants: Grants,
        ttl_secs: u64,
        now: Timestamp,
        account: bool,
        guest: Option<String>,
    ) -> Result<(String, Timestamp), SignError> {
        let exp = now.as_second() + ttl_secs as i64;
        let claims = RoomClaims {
            sub: identity.to_owned(),
            name: name.to_owned(),
            room: room.clone(),
            grants,
            typ: TokenType::Room,
            iat: now.as_second(),
            exp,
            account,
            guest,
        };
        Ok((self.encode(&claims)?, Timestamp::from_second(exp).unwrap_or(now)))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn download(
        &self,
        user: &UserId,
        generation: u64,
        consultation: &ConsultationId,
        recording: &str,
        file: &str,
        ttl_secs: u64,
        now: Timestamp,
    ) -> Result<(String, Timestamp), SignError> {
        let exp = now.as_second() + ttl_secs as i64;
        let claims = DownloadClaims {
            sub: user.clone(),
            generation,
            consultation: consultation.clone(),
            recording: recording.to_owned(),
            file: file.to_owned(),
            typ: TokenType::Download,
            iat: now.as_second(),
            exp,
        };
        Ok((self.encode(&claims)?, Timestamp::from_second(exp).unwrap_or(now)))
    }

    pub fn verify_download(&self, token: &str) -> Result<DownloadClaims, TokenError> {
        let c: DownloadClaims = self.decode(token)?;
        if c.typ != TokenType::Download {
            return Err(TokenError::WrongType);
        }
        Ok(c)
    }

    pub fn verify_room(&self, token: &str) -> Result<RoomClaims, TokenError> {
        let c: RoomClaims = self.decode(token)?;
        if c.typ != TokenType::Room {
            return Err(TokenError::WrongType);
        }
        Ok(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_told_apart() {
        let k = Keys::from_secret(&secret::SigningKey::new(*b"0123456789abcdef0123456789abcdef").unwrap());
        let now = Timestamp::now();
        let (t, _) = k.session(&UserId("u".into()), Role::Doctor, 3, TokenType::Session, 60, now).unwrap();
        assert_eq!(k.verify_session(&t, TokenType::Session).unwrap().generation, 3);
        assert_eq!(k.verify_session(&t, TokenType::Refresh).unwrap_err(), TokenError::WrongType);
        assert_eq!(k.verify_room(&t).unwrap_err(), TokenError::Invalid);
        let other = Keys::from_secret(&secret::SigningKey::new(*b"another-secret-another-secret-xx").unwrap());
        assert_eq!(other.verify_session(&t, TokenType::Session).unwrap_err(), TokenError::Invalid);
        let old = now - jiff::SignedDuration::from_hours(1);
        let (t, _) = k.session(&UserId("u".into()), Role::Doctor, 3, TokenType::Session, 60, old).unwrap();
        assert_eq!(k.verify_session(&t, TokenType::Session).unwrap_err(), TokenError::Expired);
    }
}
