//! Provider texts name people: Twilio's "The 'To' number +4522900022 is not a valid phone
//! number", a bounce naming an address. Before such a text is logged or kept, phone numbers and
//! e-mail addresses are replaced, and it is cut short.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+").expect("valid pattern")
});

/// A run of digits with the separators people write numbers with. Runs of fewer than seven
/// digits (error codes, ports, counts) are left alone.
static DIGITS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\(?\d[\d\s().\-/]*\d").expect("valid pattern"));

/// A number in international form: how the gateway writes every phone number it knows.
static INTERNATIONAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+\d[\d\s().\-]*\d").expect("valid pattern"));

/// The longest excerpt of a provider text that is kept.
pub const EXCERPT_CHARS: usize = 120;

/// `text` with e-mail addresses and phone numbers replaced by `[email]` and `[phone]`.
pub fn personal_data(text: &str) -> String {
    let without_emails = EMAIL.replace_all(text, "[email]");
    DIGITS
        .replace_all(&without_emails, |c: &Captures| {
            let run = &c[0];
            if run.chars().filter(char::is_ascii_digit).count() >= 7 {
                "[phone]".to_owned()
            } else {
                run.to_owned()
            }
        })
        .into_owned()
}

/// A log line with e-mail addresses and international phone numbers replaced. Narrower than
/// [`personal_data`]: ids, timestamps and counts in log lines are digit runs too, and stay.
pub fn log_line(text: &str) -> Cow<'_, str> {
    if !text.contains('@') && !text.contains('+') {
        return Cow::Borrowed(text);
    }
    let without_emails = EMAIL.replace_all(text, "[email]");
    let scrubbed = INTERNATIONAL.replace_all(&without_emails, |c: &Captures| {
        if c[0].chars().filter(char::is_ascii_digit).count() >= 7 {
            "[phone]".to_owned()
        } else {
            c[0].to_owned()
        }
    });
    Cow::Owned(scrubbed.into_owned())
}

/// A short, scrubbed excerpt of a provider's text, fit for a log line or a stored note.
pub fn excerpt(text: &str) -> String {
    let scrubbed = personal_data(text);
    let mut out: String = scrubbed
        .chars()
        .filter(|c| !c.is_control())
        .take(EXCERPT_CHARS)
        .collect();
    if scrubbed.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_and_addresses_are_replaced() {
        assert_eq!(
            personal_data("21211: The 'To' number +4522900022 is not a valid phone number."),
            "21211: The 'To' number [phone] is not a valid phone number."
        );
        assert_eq!(
            personal_data("to +45 22 90 00 22 and (415) 867-5309, from anna.j+x@Example.co.uk"),
            "to [phone] and [phone], from [email]"
        );
        assert_eq!(
            personal_data("error 30003 after 3 attempts on port 8080"),
            "error 30003 after 3 attempts on port 8080"
        );
    }

    #[test]
    fn log_lines_keep_ids_and_times() {
        let line = "invitation=0198f2c1-1234-7abc-8def-123456789012 at 2026-11-25T09:41:12+01:00 \
                    contact=anna@example.com from=+4522334455 to=+1 (415) 867-5309";
        assert_eq!(
            log_line(line),
            "invitation=0198f2c1-1234-7abc-8def-123456789012 at 2026-11-25T09:41:12+01:00 \
                    contact=[email] from=[phone] to=[phone]"
        );
        assert!(matches!(log_line("plain 12345678"), Cow::Borrowed(_)));
    }

    #[test]
    fn excerpts_are_short_and_single_line() {
        let long = format!("bounce for a@b.dk\n{}", "x".repeat(500));
        let e = excerpt(&long);
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
        assert!(e.starts_with("bounce for [email]x"), "{e}");
        assert!(e.ends_with('…'));
    }
}
