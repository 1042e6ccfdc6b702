//! What a provider sends is stored as the provider sent it, except for what no database column
//! can hold and no reader wants: C0 control characters in text and timestamps outside any
//! plausible range.
//!
//! The tenant API refuses such input with a 422 (the client can fix it); a provider will not fix
//! its payload, so its text is cleaned here and its impossible times become the receive time.
//! PostgreSQL refuses U+0000 in `text` and `jsonb` and times before 4713 BC outright; letting
//! either through fails the whole transaction the answer is written in.

use std::borrow::Cow;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;

use crate::chat::Parsed;
use crate::model::{
    ContactRef, DeliveryStatus, Identity, MessagingEvent, PlatformEvent, ReplyText,
};

/// A control character that text may not carry: C0 except tab, line feed and carriage return.
pub fn is_forbidden_control(c: char) -> bool {
    c.is_ascii_control() && c != '\t' && c != '\n' && c != '\r' && c != '\u{7f}'
}

/// `text` without forbidden control characters; borrowed when there were none.
pub fn clean_text(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_forbidden_control) {
        Cow::Owned(text.chars().filter(|c| !is_forbidden_control(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

fn clean_string(text: &mut String) {
    if let Cow::Owned(cleaned) = clean_text(text) {
        *text = cleaned;
    }
}

fn clean_option(text: &mut Option<String>) {
    if let Some(t) = text {
        clean_string(t);
    }
}

/// Cleans every string and object key in a JSON value.
pub fn clean_json(value: &mut Value) {
    match value {
        Value::String(s) => clean_string(s),
        Value::Array(items) => items.iter_mut().for_each(clean_json),
        Value::Object(map) => {
            if map.keys().any(|k| k.chars().any(is_forbidden_control)) {
                let entries = std::mem::take(map);
                for (k, v) in entries {
                    map.insert(clean_text(&k).into_owned(), v);
                }
            }
            map.values_mut().for_each(clean_json);
        }
        _ => {}
    }
}

/// The earliest time an answer or event can plausibly carry.
pub fn earliest_plausible() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
}

/// Whether `t` lies between 2000-01-01 and a day after `now` (clocks drift; calendars do not
/// run decades ahead).
pub fn is_plausible_time(t: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    t >= earliest_plausible() && t <= now + Duration::days(1)
}

/// `t` held within years 1 to 9999, the range both databases store; outside it no record can
/// lie, and PostgreSQL refuses times before 4713 BC outright.
pub fn storable(t: DateTime<Utc>) -> DateTime<Utc> {
    let first = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
    let last = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    t.clamp(first, last)
}

/// A provider's timestamp, or `now` when it cannot be right.
pub fn provider_time(t: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    if is_plausible_time(t, now) {
        t
    } else {
        now
    }
}

fn clean_identity(identity: &mut Identity) {
    // Phone numbers and e-mail addresses were parsed and cannot carry control characters.
    if let Identity::External(x) = identity {
        clean_string(x);
    }
}

fn clean_contact(contact: &mut ContactRef) {
    contact.identities.iter_mut().for_each(clean_identity);
    // An identity that was nothing but control characters is no identity.
    contact
        .identities
        .retain(|i| !matches!(i, Identity::External(x) if x.trim().is_empty()));
    clean_option(&mut contact.locale);
    clean_option(&mut contact.time_zone);
}

impl ReplyText {
    /// As [`PlatformEvent::sanitize`], for a customer's message.
    pub fn sanitize(&mut self) {
        clean_string(&mut self.channel);
        clean_string(&mut self.provider);
        clean_string(&mut self.provider_ref);
        clean_identity(&mut self.from);
        clean_string(&mut self.to);
        clean_string(&mut self.text);
    }
}

impl MessagingEvent {
    /// As [`PlatformEvent::sanitize`], for a messaging provider's event.
    pub fn sanitize(&mut self) {
        match self {
            MessagingEvent::Message(r) => r.sanitize(),
            MessagingEvent::Delivery(s) => s.sanitize(),
        }
    }
}

impl PlatformEvent {
    /// Removes forbidden control characters from every text the event carries and replaces
    /// implausible timestamps with `now`. Call it after the signature check (which covers the
    /// bytes as sent) and before anything is stored.
    pub fn sanitize(&mut self, now: DateTime<Utc>) {
        match self {
            PlatformEvent::TicketClosed(t) => {
                clean_string(&mut t.platform);
                clean_string(&mut t.ticket_ref);
                clean_contact(&mut t.requester);
                clean_option(&mut t.requester_platform_id);
                clean_option(&mut t.requester_name);
                clean_option(&mut t.assignee_ref);
                clean_option(&mut t.team_ref);
                t.closed_at = provider_time(t.closed_at, now);
            }
            PlatformEvent::PlatformRating(r) => {
                clean_string(&mut r.platform);
                clean_string(&mut r.rating_ref);
                clean_option(&mut r.comment);
                clean_option(&mut r.reason);
                clean_option(&mut r.ticket_ref);
                clean_option(&mut r.agent_ref);
                clean_option(&mut r.team_ref);
                clean_contact(&mut r.requester);
                clean_json(&mut r.raw_value);
                r.rated_at = provider_time(r.rated_at, now);
            }
        }
    }
}

impl DeliveryStatus {
    /// Removes forbidden control characters from the report's references.
    pub fn sanitize(&mut self) {
        clean_string(&mut self.provider);
        clean_string(&mut self.provider_ref);
        clean_option(&mut self.error_code);
    }
}

impl Parsed {
    /// [`PlatformEvent::sanitize`] for every event, and the delivery's own id and kind.
    pub fn sanitize(&mut self, now: DateTime<Utc>) {
        clean_option(&mut self.delivery_ref);
        clean_string(&mut self.kind);
        self.events.iter_mut().for_each(|e| e.sanitize(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Metric, PlatformRating, Score};
    use serde_json::json;

    #[test]
    fn removes_c0_controls_but_keeps_tab_and_line_breaks() {
        assert_eq!(clean_text("a\u{0}b\u{1b}c\td\r\ne"), "abc\td\r\ne");
        assert!(matches!(clean_text("plain æøå 😀"), Cow::Borrowed(_)));
        assert!(!is_forbidden_control('\u{7f}'), "DEL is not C0");
    }

    #[test]
    fn cleans_json_strings_and_keys_at_any_depth() {
        let mut v = json!({"a\u{0}": ["x\u{0}y", {"k": "\u{1}v"}], "n": 5});
        clean_json(&mut v);
        assert_eq!(v, json!({"a": ["xy", {"k": "v"}], "n": 5}));
    }

    #[test]
    fn implausible_provider_times_become_the_receive_time() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let ancient = Utc.with_ymd_and_hms(-5000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(provider_time(ancient, now), now);
        assert_eq!(provider_time(now + Duration::days(400), now), now);
        let fine = now - Duration::days(3);
        assert_eq!(provider_time(fine, now), fine);
        assert_eq!(
            provider_time(now + Duration::hours(2), now),
            now + Duration::hours(2)
        );
    }

    #[test]
    fn a_platform_rating_is_cleaned_throughout() {
        let now = Utc::now();
        let mut event = PlatformEvent::PlatformRating(PlatformRating {
            platform: "zendesk".into(),
            rating_ref: "r\u{0}1".into(),
            score: Score::new(Metric::Csat, 2).unwrap(),
            comment: Some("slow\u{0} answer".into()),
            reason: None,
            ticket_ref: Some("T\u{0}".into()),
            agent_ref: None,
            team_ref: None,
            requester: ContactRef {
                identities: vec![Identity::External("\u{0}".into())],
                ..ContactRef::default()
            },
            rated_at: earliest_plausible() - Duration::days(1),
            raw_value: json!({"c": "\u{0}"}),
        });
        event.sanitize(now);
        let PlatformEvent::PlatformRating(r) = event else {
            unreachable!()
        };
        assert_eq!(r.rating_ref, "r1");
        assert_eq!(r.comment.as_deref(), Some("slow answer"));
        assert_eq!(r.ticket_ref.as_deref(), Some("T"));
        assert!(r.requester.identities.is_empty());
        assert_eq!(r.rated_at, now);
        assert_eq!(r.raw_value, json!({"c": ""}));
    }
}
