//! Replies to survey e-mails as the inbound providers deliver them: SendGrid's Inbound Parse
//! (multipart fields, each in the charset `charsets` names, or the raw message in `email`),
//! Mailgun's routes (form fields, or the raw message in `body-mime`), Postmark's inbound
//! webhook (JSON), and a raw RFC 5322 message from any MTA. Each becomes one [`InboundMail`]:
//! who wrote, to which address, which message it answers, and the new text with the quoted
//! original and the signature cut off.
//!
//! MIME is parsed with `mail-parser` (charsets, encoded words, HTML-only mail). Cutting quoted
//! text is by hand: no crate knows the attribution lines of Danish, Swedish, Norwegian, English
//! and German mail clients.

use mail_parser::{HeaderValue, MessageParser};
use serde_json::Value;

use crate::model::{Email, InvalidValue};

/// A reply, as the gateway reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    /// The sender's address.
    pub from: Email,
    /// The addresses it was sent to (the envelope's where the provider gives it).
    pub recipients: Vec<String>,
    pub subject: String,
    /// Its own Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The Message-IDs it answers: In-Reply-To, then References, newest first.
    pub answers: Vec<String>,
    /// The plain text (from the HTML where there is no text part), whole.
    pub text: String,
    /// Sent by a program (out-of-office, auto-responder): kept, never read as an answer.
    pub automatic: bool,
}

impl InboundMail {
    /// The new text of the reply: above the quoted original, without the signature.
    pub fn new_text(&self) -> String {
        strip_quoted(&self.text)
    }
}

fn invalid(message: impl Into<String>) -> InvalidValue {
    InvalidValue::new("email", message)
}

/// A raw RFC 5322 message.
pub fn from_mime(raw: &[u8]) -> Result<InboundMail, InvalidValue> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| invalid("not a MIME message"))?;
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .ok_or_else(|| invalid("the message has no From address"))?;
    let from = Email::parse(from).map_err(|_| invalid("the From address is not an address"))?;
    let mut recipients = Vec::new();
    for list in [message.to(), message.cc()].into_iter().flatten() {
        recipients.extend(list.iter().filter_map(|a| a.address().map(str::to_owned)));
    }
    let mut answers: Vec<String> = ids(message.in_reply_to());
    answers.extend(ids(message.references()).into_iter().rev());
    let headers: Vec<(String, String)> = message
        .headers()
        .iter()
        .map(|h| {
            let value = match &h.value {
                HeaderValue::Text(t) => t.to_string(),
                _ => message
                    .header_raw(h.name.as_str())
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            (h.name.as_str().to_owned(), value)
        })
        .collect();
    let subject = message.subject().unwrap_or_default().to_owned();
    let text = message
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default();
    Ok(InboundMail {
        automatic: is_automatic(&headers, &subject),
        from,
        recipients,
        subject,
        message_id: message.message_id().map(str::to_owned),
        answers,
        text,
    })
}

fn ids(value: &HeaderValue) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(|i| i.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Message-IDs in a header value: `<a@b> <c@d>`, brackets removed.
fn message_ids(value: &str) -> Vec<String> {
    value
        .split(['<', '>', ' ', ',', '\t', '\r', '\n'])
        .filter(|s| s.contains('@'))
        .map(str::to_owned)
        .collect()
}

/// The address in `Name <address>` or a bare address.
fn address_of(value: &str) -> Option<Email> {
    let inner = match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value,
    };
    Email::parse(inner.trim()).ok()
}

/// The fields a parsed delivery gives, by name (the first of each).
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Assembles a delivery's parsed fields; `headers` are the message's own.
fn assemble(
    from: Option<&str>,
    recipients: Vec<String>,
    subject: Option<&str>,
    headers: &[(String, String)],
    text: Option<&str>,
    html: Option<&str>,
) -> Result<InboundMail, InvalidValue> {
    let from = from
        .and_then(address_of)
        .ok_or_else(|| invalid("the delivery names no sender address"))?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let mut answers = header("In-Reply-To").map(message_ids).unwrap_or_default();
    answers.extend(
        header("References")
            .map(message_ids)
            .unwrap_or_default()
            .into_iter()
            .rev(),
    );
    let text = match text.filter(|t| !t.trim().is_empty()) {
        Some(text) => text.to_owned(),
        None => html
            .map(mail_parser::decoders::html::html_to_text)
            .unwrap_or_default(),
    };
    let subject = subject.unwrap_or_default().to_owned();
    Ok(InboundMail {
        automatic: is_automatic(headers, &subject),
        from,
        recipients,
        subject,
        message_id: header("Message-ID").and_then(|v| message_ids(v).into_iter().next()),
        answers,
        text: text.replace("\r\n", "\n"),
    })
}

/// Postmark's inbound webhook (JSON; `Headers` is a list of `{Name, Value}`).
pub fn from_postmark(body: &Value) -> Result<InboundMail, InvalidValue> {
    if let Some(raw) = body["RawEmail"].as_str().filter(|r| !r.is_empty()) {
        return from_mime(raw.as_bytes());
    }
    let headers: Vec<(String, String)> = body["Headers"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|h| {
                    Some((
                        h["Name"].as_str()?.to_owned(),
                        h["Value"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let recipients = body["ToFull"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|r| r["Email"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let from = body["FromFull"]["Email"]
        .as_str()
        .or_else(|| body["From"].as_str());
    assemble(
        from,
        recipients,
        body["Subject"].as_str(),
        &headers,
        body["TextBody"].as_str(),
        body["HtmlBody"].as_str(),
    )
}

/// Mailgun's route delivery (form or multipart fields). `message-headers` is a JSON list of
/// `[name, value]` pairs; a route whose URL ends in `mime` posts the message in `body-mime`.
pub fn from_mailgun(fields: &[(String, String)]) -> Result<InboundMail, InvalidValue> {
    if let Some(raw) = field(fields, "body-mime") {
        let mut mail = from_mime(raw.as_bytes())?;
        if let Some(recipient) = field(fields, "recipient") {
            mail.recipients.insert(0, recipient.to_owned());
        }
        return Ok(mail);
    }
    let headers: Vec<(String, String)> = field(fields, "message-headers")
        .and_then(|h| serde_json::from_str::<Vec<(String, String)>>(h).ok())
        .unwrap_or_default();
    let recipients = field(fields, "recipient")
        .map(|r| r.split(',').map(|a| a.trim().to_owned()).collect())
        .unwrap_or_default();
    assemble(
        field(fields, "from").or_else(|| field(fields, "sender")),
        recipients,
        field(fields, "subject"),
        &headers,
        field(fields, "body-plain"),
        field(fields, "body-html"),
    )
}

/// SendGrid's Inbound Parse (multipart fields as bytes). Each field is in the charset its
/// `charsets` entry names; `envelope` is JSON with the envelope's `to`; `headers` the raw
/// header block. In raw mode the whole message is in `email`.
pub fn from_sendgrid(fields: &[(String, Vec<u8>)]) -> Result<InboundMail, InvalidValue> {
    let bytes = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    };
    if let Some(raw) = bytes("email") {
        return from_mime(raw);
    }
    let charsets: serde_json::Map<String, Value> = bytes("charsets")
        .and_then(|c| serde_json::from_slice(c).ok())
        .unwrap_or_default();
    let text_of = |name: &str| -> Option<String> {
        let raw = bytes(name)?;
        let charset = charsets
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("utf-8");
        Some(decode(raw, charset))
    };
    let headers: Vec<(String, String)> = text_of("headers")
        .map(|block| header_block(&block))
        .unwrap_or_default();
    let recipients: Vec<String> = bytes("envelope")
        .and_then(|e| serde_json::from_slice::<Value>(e).ok())
        .and_then(|e| {
            e["to"].as_array().map(|to| {
                to.iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .or_else(|| text_of("to").map(|to| to.split(',').map(|a| a.trim().to_owned()).collect()))
        .unwrap_or_default();
    assemble(
        text_of("from").as_deref(),
        recipients,
        text_of("subject").as_deref(),
        &headers,
        text_of("text").as_deref(),
        text_of("html").as_deref(),
    )
}

/// Bytes in a named charset, as mail-parser decodes MIME parts (UTF-8, ISO-8859-x,
/// Windows-125x, …); unknown charsets are read as UTF-8, invalid bytes replaced.
fn decode(raw: &[u8], charset: &str) -> String {
    match mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes()) {
        Some(decoder) => decoder(raw),
        None => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// `Name: value` lines, with folded lines joined.
fn header_block(block: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

/// Whether a program sent the message: RFC 3834 `Auto-Submitted` (anything but `no`), the
/// headers auto-responders set, or an out-of-office subject in one of the five languages.
pub fn is_automatic(headers: &[(String, String)], subject: &str) -> bool {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|v| v != "no") {
        return true;
    }
    if header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("X-Auto-Response-Suppress").is_some_and(|v| v.contains("all"))
    {
        return true;
    }
    if header("Precedence").is_some_and(|v| matches!(v.as_str(), "auto_reply" | "bulk" | "junk")) {
        return true;
    }
    let subject = subject.to_lowercase();
    const OUT_OF_OFFICE: [&str; 14] = [
        "out of office",
        "automatic reply",
        "auto-reply",
        "autoreply",
        "autosvar",
        "automatisk svar",
        "fraværende",
        "frånvarande",
        "ikke på kontoret",
        "abwesenheitsnotiz",
        "automatische antwort",
        "abwesend",
        "fravær",
        "frånvaro",
    ];
    OUT_OF_OFFICE.iter().any(|s| subject.contains(s))
}

/// The new text of a reply: everything above the first line that starts the quoted original
/// (an attribution such as "On … wrote:", "Den … skrev …:", "Am … schrieb …:", an Outlook
/// header block, "-----Original Message-----"), without `>` quoted lines and without the
/// signature ("-- ", "Sent from my iPhone" and its translations).
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
        if starts_original(trimmed, next) || is_signature(line) {
            break;
        }
        if trimmed.starts_with('>') {
            continue;
        }
        kept.push(line);
    }
    kept.join("\n").trim().to_owned()
}

fn starts_original(line: &str, next: &str) -> bool {
    let lower = line.to_lowercase();
    // Attributions ("On … wrote:", "Den … skrev …:", "Am … schrieb …:", "tis 3 okt. 2026 kl.
    // 10:12 skrev …:"): a date, the verb and a closing colon, which some clients wrap onto the
    // next line.
    let attribution = |s: &str| {
        s.ends_with(':')
            && s.chars().any(|c| c.is_ascii_digit())
            && [" wrote", " skrev", " schrieb"]
                .iter()
                .any(|verb| s.contains(verb))
    };
    let joined = format!("{lower} {}", next.to_lowercase());
    let opens = ["on ", "den ", "am "].iter().any(|o| lower.starts_with(o));
    if attribution(&lower) || (opens && !lower.ends_with(':') && attribution(&joined)) {
        return true;
    }
    // Outlook's separators and header blocks.
    let separator = lower.trim_matches('-').trim();
    if line.starts_with("-----")
        && [
            "original message",
            "oprindelig meddelelse",
            "opprinnelig melding",
            "ursprungligt meddelande",
            "ursprüngliche nachricht",
        ]
        .contains(&separator)
    {
        return true;
    }
    let next_lower = next.to_lowercase();
    [
        ("from:", "sent:"),
        ("fra:", "sendt:"),
        ("från:", "skickat:"),
        ("von:", "gesendet:"),
    ]
    .iter()
    .any(|(from, sent)| lower.starts_with(from) && next_lower.starts_with(sent))
}

fn is_signature(line: &str) -> bool {
    if line == "-- " || line == "--" {
        return true;
    }
    let lower = line.trim().to_lowercase();
    [
        "sent from my iphone",
        "sent from my ipad",
        "sent from my android",
        "sendt fra min iphone",
        "sendt fra min ipad",
        "skickat från min iphone",
        "skickat från min ipad",
        "von meinem iphone gesendet",
        "von meinem ipad gesendet",
        "get outlook for ios",
        "get outlook for android",
        "hent outlook til ios",
    ]
    .contains(&lower.as_str())
}

/// Mailgun's signature: hex HMAC-SHA256 of `timestamp` + `token` with the webhook signing key.
pub fn mailgun_signature(key: &str, timestamp: &str, token: &str) -> String {
    crate::chat::hmac_sha256(key.as_bytes(), &[timestamp.as_bytes(), token.as_bytes()])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `signature` is Mailgun's for `timestamp` and `token`, compared in constant time.
pub fn mailgun_signature_valid(key: &str, timestamp: &str, token: &str, signature: &str) -> bool {
    let expected =
        crate::chat::hmac_sha256(key.as_bytes(), &[timestamp.as_bytes(), token.as_bytes()]);
    let Ok(given) = hex_decode(signature) else {
        return false;
    };
    crate::chat::same(&expected, &given)
}

fn hex_decode(s: &str) -> Result<Vec<u8>, ()> {
    if s.len() % 2 != 0 {
        return Err(());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or(())?, 16).map_err(|_| ()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailgun_signature_matches_the_published_vector() {
        // ../shared/PROTOCOLS.md 7b: the computed vector for Mailgun's documented formula.
        let key = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
        let (timestamp, token) = (
            "1529006854",
            "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
        );
        let signature = "b63c0701c4f4b614f272106a1b367c5c3369bcdca664ae73ebd52787e45eef07";
        assert!(mailgun_signature_valid(key, timestamp, token, signature));
        assert_eq!(mailgun_signature(key, timestamp, token), signature);
        assert!(!mailgun_signature_valid(
            key,
            "1529006855",
            token,
            signature
        ));
        assert!(!mailgun_signature_valid(
            "key-other",
            timestamp,
            token,
            signature
        ));
        assert!(!mailgun_signature_valid(key, timestamp, token, "zz"));
    }

    #[test]
    fn quoted_originals_and_signatures_are_cut_in_five_languages() {
        let cases = [
            "4 - hurtig hjælp\n\nDen 3. okt. 2026 kl. 10.12 skrev Acme Support <support@acme.example>:\n> Hvor tilfreds er du?",
            "4 - hurtig hjælp\n\nOn Sat, Oct 3, 2026 at 10:12 AM Acme Support <\nsupport@acme.example> wrote:\n> How satisfied",
            "4 - hurtig hjælp\nSendt fra min iPhone\n\nDen 3. okt. 2026 skrev Acme:",
            "4 - hurtig hjælp\n\nFrån: Acme Support <support@acme.example>\nSkickat: den 3 oktober 2026 10:12\nTill: kund@example.se",
            "4 - hurtig hjælp\n\n-----Original Message-----\nFrom: Acme Support",
            "4 - hurtig hjælp\n\nAm 03.10.2026 um 10:12 schrieb Acme Support <support@acme.example>:\n> Wie zufrieden",
            "4 - hurtig hjælp\n-- \nKunde Kundesen\nKundevej 1",
            "4 - hurtig hjælp\n\nVon meinem iPhone gesendet",
            "> Hvor tilfreds er du?\n4 - hurtig hjælp",
            "4 - hurtig hjælp\n\nFra: Acme Support\nSendt: 3. oktober 2026 10:12",
        ];
        for case in cases {
            assert_eq!(strip_quoted(case), "4 - hurtig hjælp", "{case}");
        }
        // Text that only mentions writing is kept.
        assert_eq!(
            strip_quoted("Jeg skrev til jer i går. 3"),
            "Jeg skrev til jer i går. 3"
        );
    }

    #[test]
    fn automatic_replies_are_recognized() {
        let h = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
        assert!(is_automatic(
            &h("Auto-Submitted", "auto-replied"),
            "Re: Hvordan gik det?"
        ));
        assert!(!is_automatic(
            &h("Auto-Submitted", "no"),
            "Re: Hvordan gik det?"
        ));
        assert!(is_automatic(&h("X-Autoreply", "yes"), "Re"));
        assert!(is_automatic(&h("Precedence", "auto_reply"), "Re"));
        for subject in [
            "Out of Office: Hvordan gik det?",
            "Autosvar: Hvordan gik det?",
            "Automatisk svar: Hur gick det?",
            "Abwesenheitsnotiz: Wie waren wir?",
            "Fraværende: Hvordan gikk det?",
        ] {
            assert!(is_automatic(&[], subject), "{subject}");
        }
        assert!(!is_automatic(&[], "Re: Hvordan gik det?"));
    }
}
