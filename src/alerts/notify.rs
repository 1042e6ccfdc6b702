//! Notifying an alert's owner (or escalation contact): an outbox destination per channel
//! (`notify:email`, `notify:slack`, `notify:teams`), delivered at least once by the relay.
//!
//! A notification names the score, the comment, the ticket link and an acknowledge link, and
//! the customer only as far as the owner needs to recognise them: a phone number shows its
//! country code and last two digits, an e-mail address its first letter and domain. The
//! recipient is read when the notification is sent, so a changed address is used at once.
//! Chat webhooks get the event id in `Idempotency-Key`: a redelivery is recognisable.

use std::sync::Arc;

use async_trait::async_trait;
use channels::email::links::{self, Purpose};
use channels::outbound::Outbound;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ALERT_REASSIGNED, NOTIFY_EMAIL, NOTIFY_SLACK, NOTIFY_TEAMS};
use crate::dispatch::email::EmailSender;
use crate::events::{Event, ALERT_OPENED, ALERT_OVERDUE};
use crate::forward::{webhook, Retry, Sink, SinkError};
use crate::store::alerts::{directory, Owner};
use crate::store::{contacts, tenants, Db};

const PREFIX: &str = "notify:";

/// Longest comment quoted in a notification.
const MAX_COMMENT: usize = 1000;

pub struct Notifier {
    db: Db,
    email: Arc<EmailSender>,
    http: Outbound,
    public_url: String,
}

impl Notifier {
    pub fn new(db: Db, email: Arc<EmailSender>, http: Outbound, public_url: &str) -> Notifier {
        Notifier {
            db,
            email,
            http,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    async fn notify(&self, destination: &str, event: &Event) -> Result<(), SinkError> {
        let storage = |e: sea_orm::DbErr| SinkError::retry(format!("storage: {e}"));
        let recipient_field = if event.event_type == ALERT_OVERDUE {
            "escalated_to"
        } else {
            "owner"
        };
        let Some(reference) = event.data[recipient_field].as_str() else {
            return Ok(());
        };
        let Some(owner) = directory(&self.db.read, &[(event.tenant_id, reference)], &[])
            .await
            .map_err(storage)?
            .pop()
        else {
            // Removed from the directory since: nobody to tell.
            return Ok(());
        };
        let contact = match event.data["contact_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
        {
            Some(id) => contacts::get(&self.db.read, event.tenant_id, id)
                .await
                .map_err(storage)?
                .map(|c| recognisable(&c.identities))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let key = tenants::link_key(&self.db, event.tenant_id)
            .await
            .map_err(storage)?
            .ok_or_else(|| SinkError::permanent("the tenant no longer exists"))?;
        let token = links::sign(&key, Purpose::Acknowledge, event.aggregate_id, None);
        let notice = Notice::of(
            event,
            &owner,
            &contact,
            &format!("{}/a/{token}", self.public_url),
        );
        match destination {
            NOTIFY_EMAIL => {
                let Some(address) = &owner.email else {
                    return Ok(());
                };
                self.email
                    .send_notice(event.tenant_id, address, &notice.title, notice.text())
                    .await
                    .map_err(|e| SinkError {
                        retryable: e.retryable,
                        retry_after: e.retry_after,
                        ..SinkError::retry(e.message)
                    })
            }
            NOTIFY_SLACK => match &owner.slack_webhook_url {
                Some(url) => self.post(url, event.id, &notice.slack()).await,
                None => Ok(()),
            },
            NOTIFY_TEAMS => match &owner.teams_webhook_url {
                Some(url) => self.post(url, event.id, &notice.teams()).await,
                None => Ok(()),
            },
            other => Err(SinkError::permanent(format!(
                "no notification channel `{other}`"
            ))),
        }
    }

    /// Posts a chat message to an incoming webhook through the guarded client. The chat
    /// service's answer is not kept (it can quote the message).
    async fn post(&self, url: &str, event_id: Uuid, body: &Value) -> Result<(), SinkError> {
        let request = self
            .http
            .request(Method::POST, url)
            .map_err(|_| SinkError::permanent("the webhook URL is not one this gateway calls"))?
            .header("idempotency-key", event_id.to_string())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let response = request
            .send()
            .await
            .map_err(|_| SinkError::retry("the chat webhook could not be reached"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = webhook::retry_after(
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        let retryable = status.as_u16() == 429 || status.is_server_error();
        Err(SinkError {
            retryable,
            status: Some(status.as_u16()),
            retry_after,
            ..SinkError::retry(format!("the chat webhook answered {}", status.as_u16()))
        })
    }
}

#[async_trait]
impl Sink for Notifier {
    fn name(&self) -> &'static str {
        PREFIX
    }

    /// Ingest queues nothing for it: alerts queue their notifications by channel.
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn deliver(&self, _event: &Event) -> Result<(), SinkError> {
        Err(SinkError::permanent("notifications go to a named channel"))
    }

    async fn deliver_to(&self, sink_name: &str, events: &[Event]) -> Vec<Result<(), SinkError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            results.push(self.notify(sink_name, event).await);
        }
        results
    }

    fn retry(&self, _attempts: i32, error: &SinkError) -> Retry {
        match error.retry_after {
            // A chat service's throttling, honoured within an hour.
            Some(wait) => Retry::After(wait.min(webhook::MAX_RETRY_AFTER)),
            None => Retry::Backoff,
        }
    }
}

/// The customer, as far as the owner needs to recognise them.
fn recognisable(identities: &[contacts::IdentityView]) -> Vec<String> {
    identities
        .iter()
        .filter_map(|i| match i.kind.as_str() {
            "phone" => Some(masked_phone(&i.value)),
            "email" => Some(masked_email(&i.value)),
            _ => None,
        })
        .collect()
}

/// `+4520123456` → `+45…56`: the country code and the last two digits.
fn masked_phone(e164: &str) -> String {
    channels::model::E164Phone::parse(e164, None)
        .map(|phone| phone.redacted())
        .unwrap_or_else(|_| "•••".into())
}

/// `jane.doe@example.com` → `j•••@example.com`.
fn masked_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".into(),
    }
}

/// One notification's words, rendered for each channel.
struct Notice {
    title: String,
    lines: Vec<String>,
    comment: Option<String>,
    ticket: Option<(String, Option<String>)>,
    acknowledge_url: Option<String>,
}

impl Notice {
    fn of(event: &Event, owner: &Owner, contact: &[String], acknowledge_url: &str) -> Notice {
        let d = &event.data;
        let severity = d["severity"].as_str().unwrap_or("normal");
        let metric = d["answer"]["metric"].as_str().unwrap_or("").to_uppercase();
        let score = d["answer"]["score"]
            .as_i64()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "?".into());
        let what = match event.event_type.as_str() {
            ALERT_OVERDUE => "Overdue alert",
            ALERT_REASSIGNED => "Alert assigned to you",
            ALERT_OPENED if severity == "urgent" => "Urgent alert",
            _ => "Alert",
        };
        let title = format!("{what}: {metric} {score}");
        let zone: Tz = owner
            .time_zone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(Tz::UTC);
        let mut lines = Vec::new();
        if let Some(channel) = d["channel"].as_str() {
            lines.push(format!("Answered by {channel}"));
        }
        if !contact.is_empty() {
            lines.push(format!("Customer: {}", contact.join(", ")));
        }
        if let Some(due) = d["due_at"]
            .as_str()
            .and_then(|s| s.parse::<DateTime<Utc>>().ok())
        {
            lines.push(format!(
                "Follow up by {} ({})",
                due.with_timezone(&zone).format("%a %d %b %H:%M"),
                zone.name()
            ));
        }
        if event.event_type == ALERT_OVERDUE {
            if let Some(owner) = d["owner"].as_str() {
                lines.push(format!("Owner: {owner}"));
            }
        }
        let comment = d["comment"].as_str().map(|c| {
            let mut c: String = c.chars().take(MAX_COMMENT).collect();
            if c.len() < d["comment"].as_str().map_or(0, str::len) {
                c.push('…');
            }
            c
        });
        let ticket = d["ticket_ref"]
            .as_str()
            .map(|t| (t.to_owned(), d["ticket_url"].as_str().map(str::to_owned)));
        Notice {
            title,
            lines,
            comment,
            ticket,
            // Only an alert nobody has taken on yet has something to acknowledge.
            acknowledge_url: (d["status"] == "open").then(|| acknowledge_url.to_owned()),
        }
    }

    /// The e-mail's text.
    fn text(&self) -> String {
        let mut text = format!("{}\n\n", self.title);
        if let Some(comment) = &self.comment {
            text.push_str(&format!("\"{comment}\"\n\n"));
        }
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        if let Some((reference, url)) = &self.ticket {
            match url {
                Some(url) => text.push_str(&format!("Ticket {reference}: {url}\n")),
                None => text.push_str(&format!("Ticket {reference}\n")),
            }
        }
        if let Some(url) = &self.acknowledge_url {
            text.push_str(&format!("\nAcknowledge: {url}\n"));
        }
        text
    }

    /// A Slack incoming-webhook message (`text` in mrkdwn, which Mattermost and Rocket.Chat
    /// read too).
    fn slack(&self) -> Value {
        let mut text = format!("*{}*", slack_escape(&self.title));
        if let Some(comment) = &self.comment {
            text.push_str(&format!(
                "\n> {}",
                slack_escape(comment).replace('\n', "\n> ")
            ));
        }
        for line in &self.lines {
            text.push_str(&format!("\n{}", slack_escape(line)));
        }
        if let Some((reference, url)) = &self.ticket {
            match url {
                Some(url) => text.push_str(&format!(
                    "\nTicket <{}|{}>",
                    slack_escape(url),
                    slack_escape(reference)
                )),
                None => text.push_str(&format!("\nTicket {}", slack_escape(reference))),
            }
        }
        if let Some(url) = &self.acknowledge_url {
            text.push_str(&format!("\n<{}|Acknowledge>", slack_escape(url)));
        }
        json!({ "text": text })
    }

    /// A Microsoft Teams workflow webhook message: one Adaptive Card.
    fn teams(&self) -> Value {
        let mut body = vec![json!({
            "type": "TextBlock", "text": self.title, "weight": "Bolder", "size": "Medium", "wrap": true
        })];
        if let Some(comment) = &self.comment {
            body.push(
                json!({"type": "TextBlock", "text": comment, "wrap": true, "isSubtle": true}),
            );
        }
        for line in &self.lines {
            body.push(json!({"type": "TextBlock", "text": line, "wrap": true}));
        }
        let mut actions = Vec::new();
        if let Some((reference, url)) = &self.ticket {
            match url {
                Some(url) => actions.push(
                    json!({"type": "Action.OpenUrl", "title": format!("Ticket {reference}"), "url": url}),
                ),
                None => body.push(json!({"type": "TextBlock", "text": format!("Ticket {reference}")})),
            }
        }
        if let Some(url) = &self.acknowledge_url {
            actions.push(json!({"type": "Action.OpenUrl", "title": "Acknowledge", "url": url}));
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                    "actions": actions,
                }
            }]
        })
    }
}

/// Slack's three control characters in message text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_customer_is_recognisable_but_not_reachable_from_a_chat_message() {
        assert_eq!(masked_phone("+4520123456"), "+45…56");
        assert_eq!(masked_email("jane.doe@example.com"), "j•••@example.com");
    }

    #[test]
    fn a_slack_message_escapes_the_customers_words() {
        let notice = Notice {
            title: "Urgent alert: NPS 3".into(),
            lines: vec![],
            comment: Some("<!channel> & you".into()),
            ticket: Some((
                "42".into(),
                Some("https://acme.zendesk.com/agent/tickets/42".into()),
            )),
            acknowledge_url: Some("https://gw.example/a/abc".into()),
        };
        let text = notice.slack()["text"].as_str().unwrap().to_owned();
        assert!(text.contains("&lt;!channel&gt; &amp; you"), "{text}");
        assert!(text.contains("<https://acme.zendesk.com/agent/tickets/42|42>"));
        assert!(text.contains("<https://gw.example/a/abc|Acknowledge>"));
    }
}
