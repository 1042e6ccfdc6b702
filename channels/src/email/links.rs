//! Signed tokens in a survey e-mail: one rating link per score (`/r/{token}/{score}`), the
//! unsubscribe link (`/u/{token}`) and the per-invitation reply address
//! (`reply+{token}@{reply_to_domain}`).
//!
//! A token names the invitation and what it is for; its MAC (HMAC-SHA256 with the tenant's link
//! key, truncated to 128 bits) also covers the score of a rating link, so a link cannot be
//! turned into another score's. It is written in lowercase base32: local parts of e-mail
//! addresses are case-insensitive at some mail servers, and a link must survive being typed
//! or lowercased. Expiry is not in the token: the invitation's reply window, read when the
//! link is used, decides (and may have moved since the e-mail was sent).

use data_encoding::BASE32_NOPAD;
use uuid::Uuid;

use crate::chat::{hmac_sha256, same};

const MAC_LEN: usize = 16;
const PAYLOAD_LEN: usize = 1 + 16;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Answer the invitation with a score (the link's; the page may change it).
    Rating,
    /// Opt the contact out of e-mail.
    Unsubscribe,
    /// Reply to the invitation by e-mail (the plus part of the reply address).
    Reply,
    /// Acknowledge an alert (the link in its owner's notification); the token names the alert.
    Acknowledge,
}

impl Purpose {
    fn tag(self) -> u8 {
        match self {
            Purpose::Rating => b'r',
            Purpose::Unsubscribe => b'u',
            Purpose::Reply => b'm',
            Purpose::Acknowledge => b'a',
        }
    }

    fn from_tag(tag: u8) -> Option<Purpose> {
        match tag {
            b'r' => Some(Purpose::Rating),
            b'u' => Some(Purpose::Unsubscribe),
            b'm' => Some(Purpose::Reply),
            b'a' => Some(Purpose::Acknowledge),
            _ => None,
        }
    }
}

/// A token read but not yet verified: the invitation it names tells whose key checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub purpose: Purpose,
    /// The invitation; the alert, for [`Purpose::Acknowledge`].
    pub invitation: Uuid,
    mac: [u8; MAC_LEN],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the link is not valid")]
pub struct BadToken;

/// The token for `purpose` on `invitation`; `score` for a rating link.
pub fn sign(key: &[u8], purpose: Purpose, invitation: Uuid, score: Option<u8>) -> String {
    let payload = payload(purpose, invitation);
    let mut bytes = payload.to_vec();
    bytes.extend_from_slice(&mac(key, &payload, score));
    BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
}

/// Reads a token's invitation and purpose; nothing is trusted until [`Unverified::verify`].
pub fn read(token: &str) -> Result<Unverified, BadToken> {
    // A token is 53 characters; anything much longer is not one (and is not decoded).
    if token.len() > 64 {
        return Err(BadToken);
    }
    let bytes = BASE32_NOPAD
        .decode(token.to_ascii_uppercase().as_bytes())
        .map_err(|_| BadToken)?;
    if bytes.len() != PAYLOAD_LEN + MAC_LEN {
        return Err(BadToken);
    }
    let purpose = Purpose::from_tag(bytes[0]).ok_or(BadToken)?;
    let invitation = Uuid::from_slice(&bytes[1..PAYLOAD_LEN]).map_err(|_| BadToken)?;
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&bytes[PAYLOAD_LEN..]);
    Ok(Unverified {
        purpose,
        invitation,
        mac,
    })
}

impl Unverified {
    /// Checks the MAC with the tenant's key (in constant time); `score` for a rating link.
    pub fn verify(&self, key: &[u8], score: Option<u8>) -> Result<(), BadToken> {
        let expected = mac(key, &payload(self.purpose, self.invitation), score);
        if same(&expected, &self.mac) {
            Ok(())
        } else {
            Err(BadToken)
        }
    }
}

fn payload(purpose: Purpose, invitation: Uuid) -> [u8; PAYLOAD_LEN] {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload[0] = purpose.tag();
    payload[1..].copy_from_slice(invitation.as_bytes());
    payload
}

fn mac(key: &[u8], payload: &[u8], score: Option<u8>) -> [u8; MAC_LEN] {
    // "No score" and every score sign differently.
    let score = [score.map_or(0, |_| 1), score.unwrap_or(0)];
    let full = hmac_sha256(key, &[payload, &score]);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a tenant's link key of 32 bytes!";

    #[test]
    fn a_token_verifies_with_its_key_purpose_and_score_only() {
        let invitation = Uuid::now_v7();
        let token = sign(KEY, Purpose::Rating, invitation, Some(4));
        assert_eq!(token.len(), 53);
        assert!(token
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        let read = read(&token).unwrap();
        assert_eq!(read.purpose, Purpose::Rating);
        assert_eq!(read.invitation, invitation);
        assert_eq!(read.verify(KEY, Some(4)), Ok(()));
        // Another score, no score, another key: refused.
        assert_eq!(read.verify(KEY, Some(5)), Err(BadToken));
        assert_eq!(read.verify(KEY, None), Err(BadToken));
        assert_eq!(
            read.verify(b"another tenant's key of 32 bytes", Some(4)),
            Err(BadToken)
        );
        // Upper case (a mail server that folds the local part) reads the same.
        assert_eq!(super::read(&token.to_ascii_uppercase()).unwrap(), read);
    }

    #[test]
    fn a_changed_or_foreign_token_is_refused() {
        let invitation = Uuid::now_v7();
        let token = sign(KEY, Purpose::Unsubscribe, invitation, None);
        assert!(read(&token).unwrap().verify(KEY, None).is_ok());
        // The purpose byte changed: the MAC no longer matches.
        let mut bytes = BASE32_NOPAD
            .decode(token.to_ascii_uppercase().as_bytes())
            .unwrap();
        bytes[0] = b'r';
        let forged = BASE32_NOPAD.encode(&bytes).to_ascii_lowercase();
        assert!(read(&forged).unwrap().verify(KEY, None).is_err());
        for bad in ["", "x", "not-base32!", &token[..52], &format!("{token}aa")] {
            assert!(
                read(bad).and_then(|t| t.verify(KEY, None)).is_err(),
                "{bad}"
            );
        }
    }
}
