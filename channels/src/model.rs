//! The normalized feedback schema every channel adapter produces.
//!
//! Values that have rules (a score on its scale, a phone number, an e-mail address) are
//! newtypes built only through a parser, so code past the edge never checks them again.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a value could not become part of the schema. `field` names the input that was wrong,
/// so the HTTP edge can answer 422 with a pointer to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub message: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// What was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Net Promoter Score, "how likely are you to recommend us?", 0–10.
    Nps,
    /// Customer satisfaction, 1–5, or good/bad from support platforms.
    Csat,
    /// Customer effort score, "how easy was it?", 1–7.
    Ces,
    /// Free text without a score (an unsolicited reply, a comment).
    Text,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Nps, Metric::Csat, Metric::Ces, Metric::Text];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Nps => "nps",
            Metric::Csat => "csat",
            Metric::Ces => "ces",
            Metric::Text => "text",
        }
    }

    /// The numeric scale answers to this metric use; `None` for free text.
    pub fn numeric_scale(self) -> Option<Scale> {
        match self {
            Metric::Nps => Some(Scale::ZeroToTen),
            Metric::Csat => Some(Scale::OneToFive),
            Metric::Ces => Some(Scale::OneToSeven),
            Metric::Text => None,
        }
    }

    /// Scales an answer to this metric may come on.
    pub fn accepts_scale(self, scale: Scale) -> bool {
        match self {
            Metric::Csat => matches!(scale, Scale::OneToFive | Scale::GoodBad),
            other => other.numeric_scale() == Some(scale),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nps" => Ok(Metric::Nps),
            "csat" => Ok(Metric::Csat),
            "ces" => Ok(Metric::Ces),
            "text" => Ok(Metric::Text),
            other => Err(InvalidValue::new(
                "metric",
                format!("unknown metric `{other}`; expected one of nps, csat, ces, text"),
            )),
        }
    }
}

/// The scale a score was given on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scale {
    #[serde(rename = "0-10")]
    ZeroToTen,
    #[serde(rename = "1-5")]
    OneToFive,
    #[serde(rename = "1-7")]
    OneToSeven,
    /// Support platforms' thumbs up / down: 1 is good, 0 is bad.
    #[serde(rename = "good-bad")]
    GoodBad,
}

impl Scale {
    pub fn range(self) -> (i16, i16) {
        match self {
            Scale::ZeroToTen => (0, 10),
            Scale::OneToFive => (1, 5),
            Scale::OneToSeven => (1, 7),
            Scale::GoodBad => (0, 1),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scale::ZeroToTen => "0-10",
            Scale::OneToFive => "1-5",
            Scale::OneToSeven => "1-7",
            Scale::GoodBad => "good-bad",
        }
    }
}

impl FromStr for Scale {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0-10" => Ok(Scale::ZeroToTen),
            "1-5" => Ok(Scale::OneToFive),
            "1-7" => Ok(Scale::OneToSeven),
            "good-bad" => Ok(Scale::GoodBad),
            other => Err(InvalidValue::new(
                "scale",
                format!("unknown scale `{other}`"),
            )),
        }
    }
}

/// NPS classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NpsClass {
    Promoter,
    Passive,
    Detractor,
}

/// A score that is known to lie on its metric's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Score {
    metric: Metric,
    value: i16,
    scale: Scale,
}

impl Score {
    /// A score on the metric's numeric scale (NPS 0–10, CSAT 1–5, CES 1–7).
    pub fn new(metric: Metric, value: i64) -> Result<Self, InvalidValue> {
        let scale = metric.numeric_scale().ok_or_else(|| {
            InvalidValue::new("score", "a text answer carries no score; omit `score`")
        })?;
        Self::on_scale(metric, value, scale)
    }

    /// A score on an explicit scale, e.g. a CSAT given as good/bad.
    pub fn on_scale(metric: Metric, value: i64, scale: Scale) -> Result<Self, InvalidValue> {
        if !metric.accepts_scale(scale) {
            return Err(InvalidValue::new(
                "score",
                format!("{metric} is not answered on the {} scale", scale.as_str()),
            ));
        }
        let (low, high) = scale.range();
        if value < i64::from(low) || value > i64::from(high) {
            return Err(InvalidValue::new(
                "score",
                format!("{metric} score {value} is outside {low}–{high}"),
            ));
        }
        Ok(Score {
            metric,
            value: value as i16,
            scale,
        })
    }

    /// A binary platform rating (Zendesk good/bad) as CSAT.
    pub fn csat_good_bad(good: bool) -> Self {
        Score {
            metric: Metric::Csat,
            value: i16::from(good),
            scale: Scale::GoodBad,
        }
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }
    pub fn value(&self) -> i16 {
        self.value
    }
    pub fn scale(&self) -> Scale {
        self.scale
    }

    /// Promoter 9–10, passive 7–8, detractor 0–6; `None` for other metrics.
    pub fn nps_class(&self) -> Option<NpsClass> {
        (self.metric == Metric::Nps).then_some(match self.value {
            9..=10 => NpsClass::Promoter,
            7..=8 => NpsClass::Passive,
            _ => NpsClass::Detractor,
        })
    }

    /// CSAT satisfied: 4–5 on the five-point scale, or "good".
    pub fn is_satisfied(&self) -> Option<bool> {
        (self.metric == Metric::Csat).then_some(match self.scale {
            Scale::GoodBad => self.value == 1,
            _ => self.value >= 4,
        })
    }

    /// CES low effort: 5–7.
    pub fn is_low_effort(&self) -> Option<bool> {
        (self.metric == Metric::Ces).then_some(self.value >= 5)
    }

    /// Whether the answer calls for a closed-loop follow-up (NPS detractor, unsatisfied CSAT,
    /// high-effort CES).
    pub fn is_negative(&self) -> bool {
        match self.metric {
            Metric::Nps => self.nps_class() == Some(NpsClass::Detractor),
            Metric::Csat => self.is_satisfied() == Some(false),
            Metric::Ces => self.value <= 3,
            Metric::Text => false,
        }
    }
}

/// A phone number in E.164 form (`+4522334455`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164Phone(String);

impl E164Phone {
    /// Parses a number in any common notation; `default_region` (ISO 3166 alpha-2, e.g. "DK")
    /// gives the country of numbers written without a country code.
    pub fn parse(input: &str, default_region: Option<&str>) -> Result<Self, InvalidValue> {
        let region = default_region
            .map(|r| {
                r.to_ascii_uppercase()
                    .parse::<phonenumber::country::Id>()
                    .map_err(|_| InvalidValue::new("phone", format!("unknown region `{r}`")))
            })
            .transpose()?;
        let number = phonenumber::parse(region, input)
            .map_err(|e| InvalidValue::new("phone", format!("not a phone number: {e}")))?;
        if !phonenumber::is_valid(&number) {
            return Err(InvalidValue::new(
                "phone",
                "not a valid phone number for its country",
            ));
        }
        Ok(E164Phone(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A form safe for logs: country code and the last two digits.
    pub fn redacted(&self) -> String {
        let digits = &self.0[1..];
        let tail = &digits[digits.len().saturating_sub(2)..];
        format!("+{}…{tail}", &digits[..digits.len().min(2)])
    }
}

impl TryFrom<String> for E164Phone {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        E164Phone::parse(&value, None)
    }
}

impl From<E164Phone> for String {
    fn from(value: E164Phone) -> Self {
        value.0
    }
}

/// An e-mail address, syntax-checked, with the domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        let trimmed = input.trim();
        let parsed = email_address::EmailAddress::parse_with_options(
            trimmed,
            email_address::Options::default().without_display_text(),
        )
        .map_err(|e| InvalidValue::new("email", format!("not an e-mail address: {e}")))?;
        if !parsed.domain().contains('.') {
            return Err(InvalidValue::new(
                "email",
                "not an e-mail address: the domain has no dot",
            ));
        }
        Ok(Email(format!(
            "{}@{}",
            parsed.local_part(),
            parsed.domain().to_ascii_lowercase()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A form safe for logs: first letter of the local part and the domain.
    pub fn redacted(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        format!("{}…@{domain}", local.chars().next().unwrap_or('?'))
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// One way of reaching or recognizing a contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Phone(E164Phone),
    Email(Email),
    /// The contact's id in the tenant's own systems (CRM, support platform).
    External(String),
}

impl Identity {
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::Phone(_) => "phone",
            Identity::Email(_) => "email",
            Identity::External(_) => "external",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Identity::Phone(p) => p.as_str(),
            Identity::Email(e) => e.as_str(),
            Identity::External(x) => x,
        }
    }

    pub fn redacted(&self) -> String {
        match self {
            Identity::Phone(p) => p.redacted(),
            Identity::Email(e) => e.redacted(),
            Identity::External(x) => format!("external:{}…", x.chars().take(2).collect::<String>()),
        }
    }
}

/// Who answered: an existing contact's id, or identities to find or create the contact by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactRef {
    pub id: Option<Uuid>,
    pub identities: Vec<Identity>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
}

impl ContactRef {
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.identities.is_empty()
    }
}

/// References into the support platform the answer is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRefs {
    pub ticket_ref: Option<String>,
    pub agent_ref: Option<String>,
    pub team_ref: Option<String>,
}

/// A finished answer as an adapter hands it to ingest: everything but the ids the gateway
/// assigns (record id, tenant, contact id, received_at).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackInput {
    pub channel: String,
    pub provider: String,
    /// The provider's id for this answer (message SID, rating id, idempotency key); ingest is
    /// idempotent on (tenant, provider, provider_ref).
    pub provider_ref: Option<String>,
    pub contact: ContactRef,
    pub invitation_id: Option<Uuid>,
    pub metric: Metric,
    pub score: Option<Score>,
    pub comment: Option<String>,
    pub language: Option<String>,
    pub tickets: TicketRefs,
    pub occurred_at: DateTime<Utc>,
    pub metadata: serde_json::Value,
}

impl FeedbackInput {
    /// Checks the rules that tie fields together: a scored metric needs its score, text has
    /// none, and a text answer needs a comment.
    pub fn check(&self) -> Result<(), InvalidValue> {
        match (&self.metric, &self.score) {
            (Metric::Text, Some(_)) => Err(InvalidValue::new(
                "score",
                "a text answer carries no score; omit `score`",
            )),
            (Metric::Text, None) if self.comment.as_deref().unwrap_or("").trim().is_empty() => Err(
                InvalidValue::new("comment", "a text answer needs a non-empty comment"),
            ),
            (m, None) if *m != Metric::Text => Err(InvalidValue::new(
                "score",
                format!("a {m} answer needs a score"),
            )),
            (m, Some(score)) if score.metric() != *m => Err(InvalidValue::new(
                "score",
                format!("score is for {}, not {m}", score.metric()),
            )),
            _ => Ok(()),
        }
    }
}

/// One stored answer, as the gateway forwards and lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// UUIDv7: ordered by creation time.
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub channel: String,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub contact_id: Option<Uuid>,
    pub invitation_id: Option<Uuid>,
    pub metric: Metric,
    pub score: Option<i16>,
    pub scale: Option<Scale>,
    pub comment: Option<String>,
    pub language: Option<String>,
    pub ticket_ref: Option<String>,
    pub agent_ref: Option<String>,
    pub team_ref: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub metadata: serde_json::Value,
}

impl Feedback {
    /// The score again as a checked value; `None` for text answers.
    pub fn checked_score(&self) -> Option<Score> {
        match (self.score, self.scale) {
            (Some(v), Some(scale)) => Score::on_scale(self.metric, i64::from(v), scale).ok(),
            _ => None,
        }
    }
}

/// What a support platform's webhook means, once verified and parsed. Adapters produce these;
/// ingest turns them into records and surveys.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformEvent {
    /// A support platform solved or closed a ticket or conversation: a survey may follow.
    TicketClosed(TicketClosed),
    /// A support platform collected its own rating: a finished answer.
    PlatformRating(PlatformRating),
}

/// What a messaging provider's webhook means (SMS today, e-mail next).
#[derive(Debug, Clone, PartialEq)]
pub enum MessagingEvent {
    /// A customer's message: free text that may carry a score, or a keyword.
    Message(ReplyText),
    /// The provider's news about a message the gateway sent.
    Delivery(DeliveryStatus),
}

/// A message that is a request rather than an answer (SMS STOP, START, HELP and their
/// synonyms; an e-mail unsubscribe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// No more messages on this channel.
    OptOut,
    /// Messages again.
    OptIn,
    /// What is this?
    Help,
}

/// What a provider's refusal or failed delivery says about the contact's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressVerdict {
    /// The recipient unsubscribed at the provider: opt the contact out of the channel.
    OptedOut,
    /// The address cannot receive messages: mark it invalid.
    Invalid,
}

/// A ticket or conversation that a support platform solved or closed.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketClosed {
    /// zendesk, intercom, freshdesk, chatwoot, webhook (a generic signed hook)
    pub platform: String,
    /// The platform's ticket or conversation id.
    pub ticket_ref: String,
    /// The customer who asked. May be empty: the survey is then suppressed with `no_channel`.
    pub requester: ContactRef,
    /// The requester's id on the platform when the payload carries nothing else (Zendesk's
    /// events): the adapter's client can look the person up.
    pub requester_platform_id: Option<String>,
    pub requester_name: Option<String>,
    pub assignee_ref: Option<String>,
    pub team_ref: Option<String>,
    pub closed_at: DateTime<Utc>,
}

/// A rating a support platform collected itself (Zendesk good/bad, Intercom and Chatwoot 1–5,
/// Freshdesk happy … unhappy), already on one of the gateway's scales.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformRating {
    pub platform: String,
    /// The platform's id of the rating (or of the rated ticket when the platform keeps one
    /// rating per ticket): a changed rating updates the record with this reference.
    pub rating_ref: String,
    pub score: Score,
    pub comment: Option<String>,
    /// Why the customer was unhappy (Zendesk's bad-rating reason).
    pub reason: Option<String>,
    pub ticket_ref: Option<String>,
    pub agent_ref: Option<String>,
    pub team_ref: Option<String>,
    pub requester: ContactRef,
    pub rated_at: DateTime<Utc>,
    /// The platform's own value, kept in the record's metadata (e.g. Freshdesk's 103).
    pub raw_value: serde_json::Value,
}

/// A message from a customer, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyText {
    pub channel: String,
    pub provider: String,
    /// The provider's id for the message (Twilio's MessageSid): ingest is idempotent on it.
    pub provider_ref: String,
    /// The customer's address.
    pub from: Identity,
    /// The gateway's address the customer wrote to (the sending number).
    pub to: String,
    pub text: String,
    /// Attachments (MMS pictures), which are not read.
    pub attachments: u32,
    /// Set when the whole message is a keyword (STOP, START, HELP): a request, not an answer.
    pub keyword: Option<Keyword>,
    /// The invitation the message names itself (an e-mail's reply address, or the survey
    /// e-mail it answers): preferred over the contact's newest open invitation.
    pub invitation: Option<uuid::Uuid>,
}

/// The provider's report on a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub provider: String,
    /// The provider's id of the sent message (as returned when it was sent).
    pub provider_ref: String,
    pub state: DeliveryState,
    /// The provider's error code on failure (Twilio's ErrorCode, e.g. 30003).
    pub error_code: Option<String>,
    /// What the failure says about the address, as the provider's codes tell it.
    pub verdict: Option<AddressVerdict>,
}

/// Where a sent message is on its way. Reports can arrive out of order; `rank` tells which of
/// two is newer, so a late "sent" never overwrites "delivered".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Read,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Undelivered => "undelivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => DeliveryState::Queued,
            "sending" => DeliveryState::Sending,
            "sent" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "undelivered" => DeliveryState::Undelivered,
            "failed" => DeliveryState::Failed,
            "read" => DeliveryState::Read,
            _ => return None,
        })
    }

    /// Later states rank higher; the final outcomes share a rank.
    pub fn rank(self) -> u8 {
        match self {
            DeliveryState::Queued => 1,
            DeliveryState::Sending => 2,
            DeliveryState::Sent => 3,
            DeliveryState::Delivered | DeliveryState::Undelivered | DeliveryState::Failed => 4,
            DeliveryState::Read => 5,
        }
    }

    /// The message did not reach the customer and never will.
    pub fn is_failure(self) -> bool {
        matches!(self, DeliveryState::Undelivered | DeliveryState::Failed)
    }
}

/// A new UUIDv7 for records.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_ranges_accept_the_edges_and_reject_past_them() {
        let cases: &[(Metric, i64, bool)] = &[
            (Metric::Nps, -1, false),
            (Metric::Nps, 0, true),
            (Metric::Nps, 10, true),
            (Metric::Nps, 11, false),
            (Metric::Csat, 0, false),
            (Metric::Csat, 1, true),
            (Metric::Csat, 5, true),
            (Metric::Csat, 6, false),
            (Metric::Ces, 0, false),
            (Metric::Ces, 1, true),
            (Metric::Ces, 7, true),
            (Metric::Ces, 8, false),
        ];
        for &(metric, value, ok) in cases {
            assert_eq!(Score::new(metric, value).is_ok(), ok, "{metric} {value}");
        }
    }

    #[test]
    fn text_has_no_score() {
        assert!(Score::new(Metric::Text, 3).is_err());
    }

    #[test]
    fn nps_classes_follow_the_published_bands() {
        let class = |v| Score::new(Metric::Nps, v).unwrap().nps_class().unwrap();
        for v in 0..=6 {
            assert_eq!(class(v), NpsClass::Detractor, "{v}");
        }
        for v in 7..=8 {
            assert_eq!(class(v), NpsClass::Passive, "{v}");
        }
        for v in 9..=10 {
            assert_eq!(class(v), NpsClass::Promoter, "{v}");
        }
        assert_eq!(Score::new(Metric::Csat, 5).unwrap().nps_class(), None);
    }

    #[test]
    fn csat_satisfied_is_four_or_five_or_good() {
        let sat = |v| Score::new(Metric::Csat, v).unwrap().is_satisfied().unwrap();
        assert!(!sat(1) && !sat(2) && !sat(3));
        assert!(sat(4) && sat(5));
        assert_eq!(Score::csat_good_bad(true).is_satisfied(), Some(true));
        assert_eq!(Score::csat_good_bad(false).is_satisfied(), Some(false));
        assert!(Score::on_scale(Metric::Nps, 1, Scale::GoodBad).is_err());
        assert!(Score::on_scale(Metric::Csat, 2, Scale::GoodBad).is_err());
    }

    #[test]
    fn ces_low_effort_is_five_to_seven() {
        let low = |v| Score::new(Metric::Ces, v).unwrap().is_low_effort().unwrap();
        assert!(!low(1) && !low(4));
        assert!(low(5) && low(7));
    }

    #[test]
    fn negative_answers_are_detractors_unsatisfied_and_high_effort() {
        assert!(Score::new(Metric::Nps, 6).unwrap().is_negative());
        assert!(!Score::new(Metric::Nps, 7).unwrap().is_negative());
        assert!(Score::new(Metric::Csat, 3).unwrap().is_negative());
        assert!(!Score::new(Metric::Csat, 4).unwrap().is_negative());
        assert!(Score::new(Metric::Ces, 3).unwrap().is_negative());
        assert!(!Score::new(Metric::Ces, 4).unwrap().is_negative());
    }

    #[test]
    fn metric_parses_only_known_names() {
        assert_eq!("nps".parse::<Metric>().unwrap(), Metric::Nps);
        assert!("NPS".parse::<Metric>().is_err());
        assert!("stars".parse::<Metric>().is_err());
    }

    #[test]
    fn phone_numbers_normalize_to_e164_with_the_default_region() {
        assert_eq!(
            E164Phone::parse("22 33 44 55", Some("DK"))
                .unwrap()
                .as_str(),
            "+4522334455"
        );
        assert_eq!(
            E164Phone::parse("+45 22 33 44 55", None).unwrap().as_str(),
            "+4522334455"
        );
        assert_eq!(
            E164Phone::parse("+1 415 867 5309", Some("dk"))
                .unwrap()
                .as_str(),
            "+14158675309"
        );
        assert!(E164Phone::parse("22 33 44 55", None).is_err());
        assert!(E164Phone::parse("12", Some("DK")).is_err());
        assert!(E164Phone::parse("not a number", Some("DK")).is_err());
        let redacted = E164Phone::parse("+4522334455", None).unwrap().redacted();
        assert!(!redacted.contains("223344"), "{redacted}");
    }

    #[test]
    fn emails_are_checked_and_domains_lowercased() {
        assert_eq!(
            Email::parse(" Anna@Example.COM ").unwrap().as_str(),
            "Anna@example.com"
        );
        for bad in [
            "",
            "anna",
            "anna@",
            "@example.com",
            "anna@localhost",
            "a b@x.dk",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Email::parse("anna@example.com").unwrap().redacted(),
            "a…@example.com"
        );
    }

    #[test]
    fn feedback_input_ties_metric_score_and_comment() {
        let base = FeedbackInput {
            channel: "api".into(),
            provider: "api".into(),
            provider_ref: None,
            contact: ContactRef::default(),
            invitation_id: None,
            metric: Metric::Nps,
            score: Some(Score::new(Metric::Nps, 9).unwrap()),
            comment: None,
            language: None,
            tickets: TicketRefs::default(),
            occurred_at: Utc::now(),
            metadata: serde_json::Value::Null,
        };
        assert!(base.check().is_ok());
        let no_score = FeedbackInput {
            score: None,
            ..base.clone()
        };
        assert_eq!(no_score.check().unwrap_err().field, "score");
        let text_without_comment = FeedbackInput {
            metric: Metric::Text,
            score: None,
            ..base.clone()
        };
        assert_eq!(text_without_comment.check().unwrap_err().field, "comment");
        let mismatched = FeedbackInput {
            metric: Metric::Csat,
            ..base
        };
        assert_eq!(mismatched.check().unwrap_err().field, "score");
    }

    #[test]
    fn uuid_v7_ids_sort_by_creation() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(a < b);
    }
}
