//! What a visitor's browser carries and cannot forge.
//!
//! - An **impression** is issued when the gateway decides the widget may be shown: a UUIDv7 (so
//!   it carries the moment it was issued, in milliseconds) and whether it is a contact's
//!   invitation or an anonymous visitor's, MACed with the site's secret. The answer is posted
//!   under it: the MAC proves the gateway issued it for this site, its time gives the minimum
//!   time between showing and answering and the impression's age, and its id makes the answer
//!   idempotent.
//! - A **user hash** is the site backend's proof of who the visitor is:
//!   `hex(HMAC-SHA256(site secret, user id))`, as Intercom's identity verification computes it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::chat::{hmac_sha256, same};

const MAC_LEN: usize = 16;
const PAYLOAD_LEN: usize = 1 + 16;

/// Whom an impression was shown to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// An identified visitor: the impression's id is the contact's invitation.
    Contact,
    /// An anonymous visitor: the answer is stored without a contact.
    Anonymous,
}

impl Audience {
    fn tag(self) -> u8 {
        match self {
            Audience::Contact => b'c',
            Audience::Anonymous => b'a',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impression {
    pub id: Uuid,
    pub audience: Audience,
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the impression is not valid")]
pub struct BadImpression;

/// The impression token for `id` (a UUIDv7), signed with the site's secret.
pub fn sign_impression(secret: &[u8], id: Uuid, audience: Audience) -> String {
    let payload = payload(audience.tag(), id);
    let mut bytes = payload.to_vec();
    bytes.extend_from_slice(&mac(secret, &payload));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The impression a token names, when the site's secret signed it.
pub fn read_impression(secret: &[u8], token: &str) -> Result<Impression, BadImpression> {
    if token.len() > 64 {
        return Err(BadImpression);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| BadImpression)?;
    if bytes.len() != PAYLOAD_LEN + MAC_LEN {
        return Err(BadImpression);
    }
    if !same(&mac(secret, &bytes[..PAYLOAD_LEN]), &bytes[PAYLOAD_LEN..]) {
        return Err(BadImpression);
    }
    let audience = match bytes[0] {
        b'c' => Audience::Contact,
        b'a' => Audience::Anonymous,
        _ => return Err(BadImpression),
    };
    let id = Uuid::from_slice(&bytes[1..PAYLOAD_LEN]).map_err(|_| BadImpression)?;
    let (secs, nanos) = id.get_timestamp().ok_or(BadImpression)?.to_unix();
    let issued_at =
        DateTime::from_timestamp(i64::try_from(secs).map_err(|_| BadImpression)?, nanos)
            .ok_or(BadImpression)?;
    Ok(Impression {
        id,
        audience,
        issued_at,
    })
}

fn payload(tag: u8, id: Uuid) -> [u8; PAYLOAD_LEN] {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload[0] = tag;
    payload[1..].copy_from_slice(id.as_bytes());
    payload
}

fn mac(secret: &[u8], payload: &[u8]) -> [u8; MAC_LEN] {
    // Domain-separated from the user hash, which the same secret signs.
    let full = hmac_sha256(secret, &[b"impression\0", payload]);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// The user hash a site's backend computes for `user_id`.
pub fn user_hash(secret: &[u8], user_id: &str) -> String {
    crate::chat::hex(&hmac_sha256(secret, &[user_id.as_bytes()]))
}

/// Whether `hash` (hex, either case) is the site secret's HMAC of `user_id`; compared in
/// constant time.
pub fn verify_user_hash(secret: &[u8], user_id: &str, hash: &str) -> bool {
    let expected = hmac_sha256(secret, &[user_id.as_bytes()]);
    let Some(given) = decode_hex(hash) else {
        return false;
    };
    same(&expected, &given)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"wss_test-secret";

    #[test]
    fn an_impression_verifies_with_its_sites_secret_only() {
        let id = Uuid::now_v7();
        let token = sign_impression(SECRET, id, Audience::Anonymous);
        let read = read_impression(SECRET, &token).unwrap();
        assert_eq!(read.id, id);
        assert_eq!(read.audience, Audience::Anonymous);
        assert!((Utc::now() - read.issued_at).num_seconds().abs() < 5);
        assert_eq!(
            read_impression(b"another site's secret", &token),
            Err(BadImpression)
        );
        // The audience byte changed: a visitor cannot claim a contact's invitation.
        let mut bytes = URL_SAFE_NO_PAD.decode(token.as_bytes()).unwrap();
        bytes[0] = b'c';
        assert_eq!(
            read_impression(SECRET, &URL_SAFE_NO_PAD.encode(&bytes)),
            Err(BadImpression)
        );
        for bad in ["", "x", &token[..20], &format!("{token}AA"), "%%%"] {
            assert_eq!(read_impression(SECRET, bad), Err(BadImpression), "{bad}");
        }
    }

    /// The value Intercom's identity-verification documentation has a backend compute:
    /// `OpenSSL::HMAC.hexdigest('sha256', secret, user_id)`. Recomputed independently with
    /// `printf %s 123456 | openssl dgst -sha256 -hmac 'wss_test-secret'`.
    #[test]
    fn the_user_hash_is_the_hex_hmac_of_the_user_id() {
        let computed = user_hash(SECRET, "123456");
        assert_eq!(
            computed,
            "90d2150b80f825b0d29060aab674655deb83de038335e134ee1871bcb6d6461c"
        );
        assert!(verify_user_hash(SECRET, "123456", &computed));
        assert!(verify_user_hash(SECRET, "123456", &computed.to_uppercase()));
        assert!(!verify_user_hash(SECRET, "1234567", &computed));
        assert!(!verify_user_hash(b"other", "123456", &computed));
        assert!(!verify_user_hash(SECRET, "123456", &computed[..63]));
        assert!(!verify_user_hash(SECRET, "123456", ""));
    }
}
