//! Bounces and complaints from the providers a tenant's mail goes through: Mailgun's event
//! webhook (`failed` with `severity: permanent`, `complained`), Postmark's bounce and spam
//! complaint webhooks (`RecordType: Bounce` with a hard bounce type, `SpamComplaint`) and
//! SendGrid's Event Webhook (`bounce` of type `bounce`, `dropped` for a bounced or invalid
//! address, `spamreport`), whose deliveries are signed with ECDSA. A permanent bounce makes
//! the address invalid; a complaint opts the contact out of e-mail. Soft bounces, blocks and
//! delays say nothing lasting about the address and are left alone.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use serde_json::Value;

use crate::model::{Email, InvalidValue};

/// What a provider's event says about an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressEvent {
    /// The address cannot receive mail.
    Bounced(Email),
    /// The recipient marked the mail as spam.
    Complained(Email),
}

/// Mailgun's event webhook body: `{"signature": {…}, "event-data": {"event", "severity",
/// "recipient", …}}`.
pub fn from_mailgun(body: &Value) -> Vec<AddressEvent> {
    let data = &body["event-data"];
    let Some(address) = data["recipient"]
        .as_str()
        .and_then(|a| Email::parse(a).ok())
    else {
        return Vec::new();
    };
    match (data["event"].as_str(), data["severity"].as_str()) {
        (Some("failed"), Some("permanent")) => vec![AddressEvent::Bounced(address)],
        (Some("complained"), _) => vec![AddressEvent::Complained(address)],
        _ => Vec::new(),
    }
}

/// The signature object of a Mailgun event webhook: (timestamp, token, signature).
pub fn mailgun_signature(body: &Value) -> Option<(&str, &str, &str)> {
    let s = &body["signature"];
    Some((
        s["timestamp"].as_str()?,
        s["token"].as_str()?,
        s["signature"].as_str()?,
    ))
}

/// Postmark's bounce types that mean the address does not work (Postmark's bounce API:
/// `HardBounce` 1, `BadEmailAddress` 100000, `ManuallyDeactivated` 16384 and the like).
const POSTMARK_PERMANENT: &[&str] = &[
    "HardBounce",
    "BadEmailAddress",
    "ManuallyDeactivated",
    "Unsubscribe",
    "AddressChange",
];

/// Whether a Postmark body is one of its event webhooks (bounce, spam complaint, and the
/// delivery, open, click and subscription records the gateway has no use for) rather than an
/// inbound mail, which carries no `RecordType` (or `Inbound`).
pub fn is_postmark_event(body: &Value) -> bool {
    body["RecordType"]
        .as_str()
        .is_some_and(|record| record != "Inbound")
}

/// Postmark's bounce or spam complaint webhook: `RecordType`, `Type`, `Email`.
pub fn from_postmark(body: &Value) -> Vec<AddressEvent> {
    let Some(address) = body["Email"].as_str().and_then(|a| Email::parse(a).ok()) else {
        return Vec::new();
    };
    match (body["RecordType"].as_str(), body["Type"].as_str()) {
        (Some("SpamComplaint"), _) => vec![AddressEvent::Complained(address)],
        (Some("Bounce"), Some(kind)) if POSTMARK_PERMANENT.contains(&kind) => {
            vec![AddressEvent::Bounced(address)]
        }
        _ => Vec::new(),
    }
}

/// The header SendGrid's Signed Event Webhook carries its signature in (base64 DER ECDSA).
pub const SENDGRID_SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
/// The header with the Unix time the signature was made at.
pub const SENDGRID_TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// The P-256 public key a tenant copies from SendGrid's settings ("Verification Key").
#[derive(Debug, Clone)]
pub struct SendgridKey(VerifyingKey);

impl SendgridKey {
    /// Reads the key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo, with or
    /// without PEM armour.
    pub fn parse(text: &str) -> Result<SendgridKey, InvalidValue> {
        let invalid = || {
            InvalidValue::new(
                "inbound.sendgrid_verification_key",
                "the Signed Event Webhook's verification key: an ECDSA P-256 public key in \
                 base64, as SendGrid's mail settings show it",
            )
        };
        let base64: String = text
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .flat_map(|line| line.split_whitespace())
            .collect();
        let der = BASE64.decode(base64).map_err(|_| invalid())?;
        VerifyingKey::from_public_key_der(&der)
            .map(SendgridKey)
            .map_err(|_| invalid())
    }

    /// The key in the form SendGrid shows it, for storing and showing back.
    pub fn to_base64(&self) -> String {
        let der = self
            .0
            .to_public_key_der()
            .expect("a P-256 key encodes as DER");
        BASE64.encode(der.as_bytes())
    }

    /// Whether `signature` (base64 DER) signs the timestamp followed by the body, byte for
    /// byte as received (SendGrid's payload ends in CRLF, which is signed too).
    pub fn verifies(&self, timestamp: &str, body: &[u8], signature: &str) -> bool {
        let Ok(der) = BASE64.decode(signature.trim()) else {
            return false;
        };
        let Ok(signature) = DerSignature::from_bytes(&der) else {
            return false;
        };
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        self.0.verify(&signed, &signature).is_ok()
    }
}

/// SendGrid's reasons for dropping a message that say the address does not work.
const SENDGRID_DROPPED_BOUNCED: &[&str] = &["Bounced Address", "Invalid"];
/// ... and that say the recipient complained before.
const SENDGRID_DROPPED_COMPLAINED: &[&str] = &["Spam Reporting Address"];

/// SendGrid's Event Webhook body: a JSON array of events, each with `email` and `event`.
pub fn from_sendgrid(body: &Value) -> Vec<AddressEvent> {
    let Some(events) = body.as_array() else {
        return Vec::new();
    };
    events
        .iter()
        .filter_map(|event| {
            let address = event["email"].as_str().and_then(|a| Email::parse(a).ok())?;
            let reason = event["reason"].as_str().unwrap_or("");
            match event["event"].as_str()? {
                // `type` is `bounce` for a hard bounce and `blocked` for a soft one; older
                // deliveries carry no `type` and mean a hard bounce.
                "bounce" if matches!(event["type"].as_str(), None | Some("bounce")) => {
                    Some(AddressEvent::Bounced(address))
                }
                "dropped" if SENDGRID_DROPPED_BOUNCED.contains(&reason) => {
                    Some(AddressEvent::Bounced(address))
                }
                "dropped" if SENDGRID_DROPPED_COMPLAINED.contains(&reason) => {
                    Some(AddressEvent::Complained(address))
                }
                "spamreport" => Some(AddressEvent::Complained(address)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    // The test vector of SendGrid's Python library (sendgrid/sendgrid-python,
    // test/unit/test_eventwebhook.py): a real `dropped` event, serialized with sorted keys and
    // no spaces, followed by CRLF, signed at 1600112502.
    const SDK_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
    const SDK_SIGNATURE: &str = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";
    const SDK_TIMESTAMP: &str = "1600112502";
    const SDK_PAYLOAD: &str = "[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]\r\n";

    #[test]
    fn sendgrid_signatures_are_checked_against_the_sdk_vector() {
        let key = SendgridKey::parse(SDK_KEY).unwrap();
        assert!(key.verifies(SDK_TIMESTAMP, SDK_PAYLOAD.as_bytes(), SDK_SIGNATURE));
        assert_eq!(key.to_base64(), SDK_KEY);
        // The SDK's negative cases: another key, another payload, another signature (one
        // character changed), a timestamp that is not the signed one.
        let other = SendgridKey::parse("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==").unwrap();
        assert!(!other.verifies(SDK_TIMESTAMP, SDK_PAYLOAD.as_bytes(), SDK_SIGNATURE));
        assert!(!key.verifies(SDK_TIMESTAMP, b"payload", SDK_SIGNATURE));
        assert!(!key.verifies(
            SDK_TIMESTAMP,
            SDK_PAYLOAD.as_bytes(),
            "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0="
        ));
        assert!(!key.verifies("timestamp", SDK_PAYLOAD.as_bytes(), SDK_SIGNATURE));
        // Without the trailing CRLF the bytes are not the signed ones.
        assert!(!key.verifies(
            SDK_TIMESTAMP,
            SDK_PAYLOAD.trim_end().as_bytes(),
            SDK_SIGNATURE
        ));
        assert!(!key.verifies(SDK_TIMESTAMP, SDK_PAYLOAD.as_bytes(), "not base64!"));
        // PEM armour is accepted; anything else is not a key.
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{SDK_KEY}\n-----END PUBLIC KEY-----\n");
        assert_eq!(SendgridKey::parse(&pem).unwrap().to_base64(), SDK_KEY);
        assert!(SendgridKey::parse("bm90IGEga2V5").is_err());

        let payload: Value = serde_json::from_str(SDK_PAYLOAD).unwrap();
        assert_eq!(
            from_sendgrid(&payload),
            [AddressEvent::Bounced(email("hello@world.com"))]
        );
    }

    #[test]
    fn sendgrid_events_that_say_something_lasting_are_read() {
        // Shapes from SendGrid's Event Webhook reference (twilio.com/docs/sendgrid/
        // for-developers/tracking-events/event): a hard bounce, a block, a spam report, a
        // delivery and a drop for an unsubscribed address.
        let events = json!([
            {"email": "alex@example.com", "timestamp": 1513299569,
             "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
             "bounce_classification": "Invalid Address", "event": "bounce",
             "category": "cat facts", "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
             "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
             "reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
            {"email": "blocked@example.com", "timestamp": 1513299569,
             "bounce_classification": "Invalid Address", "event": "bounce",
             "reason": "500 unknown recipient", "status": "5.0.0", "type": "blocked"},
            {"email": "spam@example.com", "timestamp": 1513299569,
             "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>", "event": "spamreport",
             "sg_event_id": "37nvH5QBz858KGVYCM4uOA==",
             "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"},
            {"email": "ok@example.com", "timestamp": 1513299569, "event": "delivered",
             "response": "250 OK"},
            {"email": "gone@example.com", "timestamp": 1513299569, "event": "dropped",
             "reason": "Unsubscribed Address", "status": "5.0.0"},
            {"event": "account_status_change", "timestamp": 1709142428,
             "type": "compliance_suspend"}
        ]);
        assert_eq!(
            from_sendgrid(&events),
            [
                AddressEvent::Bounced(email("alex@example.com")),
                AddressEvent::Complained(email("spam@example.com")),
            ]
        );
        assert!(from_sendgrid(&json!({"event": "bounce"})).is_empty());
    }

    #[test]
    fn permanent_bounces_and_complaints_are_read_and_the_rest_left_alone() {
        let mailgun = |event: &str, severity: &str| {
            from_mailgun(&json!({"event-data": {"event": event, "severity": severity,
                "recipient": "kunde@example.dk"}}))
        };
        assert_eq!(
            mailgun("failed", "permanent"),
            [AddressEvent::Bounced(email("kunde@example.dk"))]
        );
        assert!(mailgun("failed", "temporary").is_empty());
        assert_eq!(
            mailgun("complained", ""),
            [AddressEvent::Complained(email("kunde@example.dk"))]
        );
        assert!(mailgun("delivered", "").is_empty());

        let postmark = |record: &str, kind: &str| {
            from_postmark(&json!({"RecordType": record, "Type": kind, "Email": "kunde@example.dk"}))
        };
        assert_eq!(postmark("Bounce", "HardBounce").len(), 1);
        assert!(postmark("Delivery", "").is_empty());
        assert!(is_postmark_event(&json!({"RecordType": "Open"})));
        assert!(!is_postmark_event(&json!({"From": "kunde@example.dk"})));
        assert!(postmark("Bounce", "SoftBounce").is_empty());
        assert_eq!(
            postmark("SpamComplaint", "SpamComplaint"),
            [AddressEvent::Complained(email("kunde@example.dk"))]
        );
    }
}
