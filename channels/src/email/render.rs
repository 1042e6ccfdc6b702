//! A survey e-mail's content: subject, plain text and HTML, from the survey's question in the
//! contact's language and one link per score.
//!
//! The HTML is what mail clients render reliably: a layout table, inline styles, no script, no
//! external images or style sheets. Every score is a link of its own (a button), so one click
//! opens the rating page with that score chosen; the plain-text part lists the same links.

use crate::model::Metric;

use super::texts::Texts;

/// What the message says; the links are the gateway's, signed per invitation.
pub struct SurveyMail<'a> {
    pub texts: &'static Texts,
    pub question: &'a str,
    pub metric: Metric,
    /// (score, rating link), lowest score first.
    pub rating_links: &'a [(i16, String)],
    pub unsubscribe_url: &'a str,
}

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// CSAT's five answers as faces above the numbers.
const FACES: [&str; 5] = ["😠", "🙁", "😐", "🙂", "😀"];

pub fn render(mail: &SurveyMail) -> Rendered {
    let texts = mail.texts;
    let (low, high) = texts.ends(mail.metric);

    let mut text = format!("{}\n\n", mail.question);
    for (score, link) in mail.rating_links {
        text.push_str(&format!("{score}: {link}\n"));
    }
    if !low.is_empty() {
        let (first, last) = score_range(mail.rating_links);
        text.push_str(&format!("\n{first} = {low}, {last} = {high}\n"));
    }
    text.push_str(&format!(
        "\n{}\n\n-- \n{} {}: {}\n",
        texts.reply_hint, texts.unsubscribe_hint, texts.unsubscribe_link, mail.unsubscribe_url
    ));

    let mut buttons = String::new();
    for (score, link) in mail.rating_links {
        let face = match mail.metric {
            Metric::Csat => FACES
                .get(usize::try_from(*score - 1).unwrap_or(usize::MAX))
                .map(|f| format!("<span style=\"font-size:22px;line-height:28px\">{f}</span><br>"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        buttons.push_str(&format!(
            "<td align=\"center\" style=\"padding:2px\">\
             <a href=\"{href}\" style=\"display:inline-block;min-width:28px;padding:8px 6px;\
             border:1px solid #1f4e79;border-radius:6px;color:#1f4e79;font-weight:bold;\
             font-family:Arial,Helvetica,sans-serif;font-size:16px;text-decoration:none\">\
             {face}{score}</a></td>",
            href = escape(link),
        ));
    }
    let ends = if low.is_empty() {
        String::new()
    } else {
        format!(
            "<tr><td style=\"font-family:Arial,Helvetica,sans-serif;font-size:12px;color:#555555\">\
             <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\"><tr>\
             <td align=\"left\">{}</td><td align=\"right\">{}</td></tr></table></td></tr>",
            escape(low),
            escape(high)
        )
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{subject}</title></head>\
         <body style=\"margin:0;padding:0;background:#f4f4f4\">\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
         style=\"background:#f4f4f4\"><tr><td align=\"center\" style=\"padding:24px 8px\">\
         <table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" \
         style=\"max-width:600px;background:#ffffff;border-radius:8px\">\
         <tr><td style=\"padding:24px;font-family:Arial,Helvetica,sans-serif;font-size:18px;\
         color:#222222\">{question}</td></tr>\
         <tr><td style=\"padding:0 24px\"><table role=\"presentation\" cellpadding=\"0\" \
         cellspacing=\"0\"><tr>{buttons}</tr></table></td></tr>\
         <tr><td style=\"padding:4px 24px\"><table role=\"presentation\" width=\"100%\" \
         cellpadding=\"0\" cellspacing=\"0\">{ends}</table></td></tr>\
         <tr><td style=\"padding:16px 24px;font-family:Arial,Helvetica,sans-serif;font-size:14px;\
         color:#444444\">{hint}</td></tr>\
         <tr><td style=\"padding:16px 24px;font-family:Arial,Helvetica,sans-serif;font-size:12px;\
         color:#777777;border-top:1px solid #eeeeee\">{unsub_hint} \
         <a href=\"{unsub}\" style=\"color:#777777\">{unsub_link}</a></td></tr>\
         </table></td></tr></table></body></html>\n",
        lang = texts.lang,
        subject = escape(texts.subject),
        question = escape(mail.question),
        hint = escape(texts.reply_hint),
        unsub_hint = escape(texts.unsubscribe_hint),
        unsub = escape(mail.unsubscribe_url),
        unsub_link = escape(texts.unsubscribe_link),
    );
    Rendered {
        subject: texts.subject.to_owned(),
        text,
        html,
    }
}

fn score_range(links: &[(i16, String)]) -> (i16, i16) {
    let first = links.first().map_or(0, |(s, _)| *s);
    let last = links.last().map_or(0, |(s, _)| *s);
    (first, last)
}

/// Text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::texts::for_language;

    fn links(range: std::ops::RangeInclusive<i16>) -> Vec<(i16, String)> {
        range
            .map(|s| (s, format!("https://fb.example/r/tok{s}/{s}")))
            .collect()
    }

    #[test]
    fn every_score_is_a_link_in_both_parts_and_the_question_is_escaped() {
        let links = links(1..=5);
        let mail = render(&SurveyMail {
            texts: for_language("da"),
            question: "Hvor tilfreds er du med <service>?",
            metric: Metric::Csat,
            rating_links: &links,
            unsubscribe_url: "https://fb.example/u/tok",
        });
        assert_eq!(mail.subject, "Hvordan gik det?");
        for (score, link) in &links {
            assert!(
                mail.text.contains(&format!("{score}: {link}")),
                "{}",
                mail.text
            );
            assert!(mail.html.contains(&format!("href=\"{link}\"")));
        }
        assert!(mail
            .html
            .contains("Hvor tilfreds er du med &lt;service&gt;?"));
        assert!(!mail.html.contains("<service>"));
        assert!(!mail.html.to_ascii_lowercase().contains("<script"));
        assert!(mail.html.contains("😀"), "CSAT shows faces");
        assert!(mail
            .text
            .contains("1 = Meget utilfreds, 5 = Meget tilfreds"));
        assert!(mail.html.contains("https://fb.example/u/tok"));
        assert!(mail.text.contains("Afmeld: https://fb.example/u/tok"));
    }

    #[test]
    fn nps_has_eleven_links_and_no_faces() {
        let links = links(0..=10);
        let mail = render(&SurveyMail {
            texts: for_language("en"),
            question: "How likely are you to recommend us?",
            metric: Metric::Nps,
            rating_links: &links,
            unsubscribe_url: "https://fb.example/u/tok",
        });
        assert_eq!(mail.html.matches("/r/tok").count(), 11);
        assert!(!mail.html.contains("😀"));
        assert!(mail
            .text
            .contains("0 = Not at all likely, 10 = Extremely likely"));
    }
}
