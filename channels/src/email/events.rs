//! Bounces and complaints from the providers a tenant's mail goes through: Mailgun's event
//! webhook (`failed` with `severity: permanent`, `complained`) and Postmark's bounce and spam
//! complaint webhooks (`RecordType: Bounce` with a hard bounce type, `SpamComplaint`). A
//! permanent bounce makes the address invalid; a complaint opts the contact out of e-mail.
//! Soft bounces and delays say nothing lasting about the address and are left alone.

use serde_json::Value;

use crate::model::Email;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
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
