//! The e-mail channel: a tenant's settings (`PUT /v1/channels/email`), the signed tokens in a
//! survey e-mail's links and reply address, its words in five languages, and its content.
//! Sending (SMTP, or files for a demo) is the gateway's dispatch; the pages behind the links
//! are its HTTP edge.

pub mod events;
pub mod inbound;
pub mod links;
pub mod render;
pub mod texts;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::Credentials;
use crate::model::{Email, InvalidValue};
use crate::secret::Secret;

/// The name the settings are stored and served under: `/v1/channels/email`.
pub const NAME: &str = "email";

/// The secret that holds the SMTP password.
pub const SMTP_PASSWORD: &str = "smtp_password";
/// The secret Mailgun signs inbound deliveries with.
pub const MAILGUN_SIGNING_KEY: &str = "mailgun_signing_key";
/// The password of the basic auth that protects the SendGrid, Postmark and MIME hooks.
pub const INBOUND_PASSWORD: &str = "inbound_password";
/// The DKIM private key (RSA in PKCS#1 PEM, or an Ed25519 seed in base64).
pub const DKIM_PRIVATE_KEY: &str = "dkim_private_key";

/// How a tenant's survey e-mails are DKIM-signed (the key is a secret, stored apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimSettings {
    /// The signing domain (`d=`), normally the sender's.
    pub domain: String,
    /// The selector (`s=`): the key is published at `{selector}._domainkey.{domain}`.
    pub selector: String,
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: only for servers on addresses `outbound.allow_private_networks` opens.
    None,
    /// STARTTLS after connecting (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
        }
    }
}

/// A tenant's SMTP server (the password is a secret, stored apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A tenant's e-mail settings as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailSettings {
    /// `Acme Support <support@acme.example>` or a bare address.
    pub from: String,
    /// Replies go to `reply+{token}@{reply_to_domain}`; without it, to the `from` address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_domain: Option<String>,
    /// The tenant's own SMTP server; without it, the gateway's (`[email]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSettings>,
    /// The user name of the basic auth on the inbound hooks (its password is a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_username: Option<String>,
    /// DKIM signing, when a key is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim: Option<DkimSettings>,
    /// The public key (base64 DER, as SendGrid's settings page shows it) that SendGrid's
    /// Signed Event Webhook is verified with. Public, so shown back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sendgrid_verification_key: Option<String>,
}

impl EmailSettings {
    /// The stored settings of a tenant's credentials.
    pub fn of(creds: &Credentials) -> Result<EmailSettings, InvalidValue> {
        serde_json::from_value(creds.settings.clone())
            .map_err(|e| InvalidValue::new("email", format!("stored settings: {e}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    from: Option<String>,
    reply_to_domain: Option<String>,
    smtp: Option<SmtpBody>,
    inbound: Option<InboundBody>,
    dkim: Option<DkimBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DkimBody {
    domain: String,
    selector: String,
    #[serde(default = "rsa")]
    algorithm: DkimAlgorithm,
    private_key: String,
}

fn rsa() -> DkimAlgorithm {
    DkimAlgorithm::Rsa
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundBody {
    mailgun_signing_key: Option<String>,
    sendgrid_verification_key: Option<String>,
    basic_auth: Option<BasicAuthBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuthBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpBody {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<SmtpTls>,
    username: Option<String>,
    password: Option<String>,
}

/// Checks `PUT /v1/channels/email` and splits it into settings and the SMTP password.
pub fn configure(body: &Value) -> Result<Credentials, Vec<InvalidValue>> {
    let body: Body = serde_json::from_value(body.clone())
        .map_err(|e| vec![InvalidValue::new("body", e.to_string())])?;
    let mut errors = Vec::new();
    let from = match body.from.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(InvalidValue::new(
                "from",
                "required: the sender, such as \"Acme Support <support@acme.example>\"",
            ));
            String::new()
        }
        Some(from) => match mailbox(from) {
            Ok(_) => from.to_owned(),
            Err(e) => {
                errors.push(e);
                String::new()
            }
        },
    };
    let reply_to_domain = body.reply_to_domain.map(|d| d.trim().to_ascii_lowercase());
    if let Some(domain) = &reply_to_domain {
        if !is_domain(domain) {
            errors.push(InvalidValue::new(
                "reply_to_domain",
                "a domain name, such as \"reply.acme.example\"",
            ));
        }
    }
    let mut secrets = std::collections::BTreeMap::new();
    let smtp = match body.smtp {
        None => None,
        Some(smtp) => {
            let host = smtp.host.unwrap_or_default().trim().to_ascii_lowercase();
            if host.is_empty() || !(is_domain(&host) || host.parse::<std::net::IpAddr>().is_ok()) {
                errors.push(InvalidValue::new(
                    "smtp.host",
                    "the SMTP server's host name, such as \"smtp.acme.example\"",
                ));
            }
            let tls = smtp.tls.unwrap_or(SmtpTls::Starttls);
            let port = smtp.port.unwrap_or_else(|| tls.default_port());
            if port == 0 {
                errors.push(InvalidValue::new("smtp.port", "a port from 1 to 65535"));
            }
            let username = smtp.username.filter(|u| !u.is_empty());
            match (&username, smtp.password.filter(|p| !p.is_empty())) {
                (Some(_), Some(password)) => {
                    secrets.insert(SMTP_PASSWORD.to_owned(), Secret::new(password));
                }
                (None, None) => {}
                _ => errors.push(InvalidValue::new(
                    "smtp.password",
                    "give both username and password, or neither",
                )),
            }
            Some(SmtpSettings {
                host,
                port,
                tls,
                username,
            })
        }
    };
    let mut inbound_username = None;
    let mut sendgrid_verification_key = None;
    if let Some(inbound) = body.inbound {
        if let Some(key) = inbound.mailgun_signing_key.filter(|k| !k.is_empty()) {
            secrets.insert(MAILGUN_SIGNING_KEY.to_owned(), Secret::new(key));
        }
        if let Some(key) = inbound.sendgrid_verification_key {
            match events::SendgridKey::parse(&key) {
                Ok(parsed) => sendgrid_verification_key = Some(parsed.to_base64()),
                Err(e) => errors.push(e),
            }
        }
        if let Some(auth) = inbound.basic_auth {
            // Providers put it in the hook's URL (https://user:pass@host/…): no colon in the
            // name, and a password long enough not to be guessed.
            if auth.username.is_empty() || auth.username.contains(':') {
                errors.push(InvalidValue::new(
                    "inbound.basic_auth.username",
                    "a user name without a colon",
                ));
            }
            if auth.password.chars().count() < 16 {
                errors.push(InvalidValue::new(
                    "inbound.basic_auth.password",
                    "at least 16 characters",
                ));
            }
            inbound_username = Some(auth.username);
            secrets.insert(INBOUND_PASSWORD.to_owned(), Secret::new(auth.password));
        }
    }
    let dkim = match body.dkim {
        None => None,
        Some(dkim) => {
            let domain = dkim.domain.trim().to_ascii_lowercase();
            if !is_domain(&domain) {
                errors.push(InvalidValue::new("dkim.domain", "a domain name"));
            }
            let selector = dkim.selector.trim().to_ascii_lowercase();
            if !is_domain(&selector) {
                errors.push(InvalidValue::new(
                    "dkim.selector",
                    "letters, digits, hyphens and dots",
                ));
            }
            if dkim.private_key.trim().is_empty() {
                errors.push(InvalidValue::new("dkim.private_key", "required"));
            }
            secrets.insert(DKIM_PRIVATE_KEY.to_owned(), Secret::new(dkim.private_key));
            Some(DkimSettings {
                domain,
                selector,
                algorithm: dkim.algorithm,
            })
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let settings = EmailSettings {
        from,
        reply_to_domain,
        smtp,
        inbound_username,
        dkim,
        sendgrid_verification_key,
    };
    Ok(Credentials {
        settings: serde_json::to_value(settings).expect("settings serialize"),
        secrets,
    })
}

/// The address of `Name <address>` or of a bare address.
pub fn mailbox(from: &str) -> Result<Email, InvalidValue> {
    let address = match (from.rfind('<'), from.ends_with('>')) {
        (Some(open), true) => {
            let name = from[..open].trim();
            if name.chars().any(|c| c.is_control() || c == '<' || c == '>') {
                return Err(InvalidValue::new(
                    "from",
                    "the name has a character not allowed",
                ));
            }
            &from[open + 1..from.len() - 1]
        }
        _ => from,
    };
    Email::parse(address.trim()).map_err(|_| InvalidValue::new("from", "not an e-mail address"))
}

/// A host name of letters, digits and hyphens in dot-separated labels.
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_and_the_password_are_split() {
        let creds = configure(&json!({
            "from": "Acme Support <support@acme.example>",
            "reply_to_domain": "Reply.Acme.Example",
            "smtp": {"host": "smtp.acme.example", "tls": "implicit", "username": "acme",
                     "password": "s3cret"}
        }))
        .unwrap();
        let settings = EmailSettings::of(&creds).unwrap();
        assert_eq!(
            settings.reply_to_domain.as_deref(),
            Some("reply.acme.example")
        );
        let smtp = settings.smtp.unwrap();
        assert_eq!((smtp.port, smtp.tls), (465, SmtpTls::Implicit));
        assert_eq!(creds.secret(SMTP_PASSWORD).unwrap().expose(), "s3cret");
        assert!(!creds.settings.to_string().contains("s3cret"));
    }

    #[test]
    fn bad_settings_name_their_fields() {
        let fields = |body: Value| -> Vec<&'static str> {
            configure(&body)
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(fields(json!({})), ["from"]);
        assert_eq!(fields(json!({"from": "Acme <not an address>"})), ["from"]);
        assert_eq!(
            fields(json!({"from": "a@acme.example", "reply_to_domain": "no spaces.example"})),
            ["reply_to_domain"]
        );
        assert_eq!(
            fields(
                json!({"from": "a@acme.example", "smtp": {"host": "h.example", "username": "u"}})
            ),
            ["smtp.password"]
        );
        assert_eq!(
            fields(json!({"from": "a@acme.example", "smtp": {"port": 25}})),
            ["smtp.host"]
        );
        assert_eq!(
            fields(json!({"from": "a@acme.example", "smtp": {"tls": "ssl"}})),
            ["body"]
        );
        assert_eq!(
            fields(json!({"from": "a@acme.example", "bcc": "x"})),
            ["body"]
        );
    }
}
