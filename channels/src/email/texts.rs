//! The words around a survey e-mail's question and on its pages, in the five languages the
//! gateway's customers write in. The question itself is the survey's, per language.

use crate::model::Metric;

/// One language's texts.
#[derive(Debug)]
pub struct Texts {
    pub lang: &'static str,
    /// The subject when the survey gives none.
    pub subject: &'static str,
    /// Under the scale: a reply works too.
    pub reply_hint: &'static str,
    pub unsubscribe_hint: &'static str,
    pub unsubscribe_link: &'static str,
    /// The scale's end labels: (lowest, highest), per metric.
    pub nps_ends: (&'static str, &'static str),
    pub csat_ends: (&'static str, &'static str),
    pub ces_ends: (&'static str, &'static str),
    // The rating page.
    pub your_answer: &'static str,
    pub comment_label: &'static str,
    pub send: &'static str,
    pub thank_you: &'static str,
    /// The web widget's close button and its dialog's name.
    pub close: &'static str,
    pub widget_title: &'static str,
    /// The widget's message when no score is chosen, and when sending failed.
    pub widget_pick: &'static str,
    pub widget_error: &'static str,
    pub thank_you_detail: &'static str,
    pub bad_link_title: &'static str,
    pub bad_link_detail: &'static str,
    // The unsubscribe page.
    pub unsubscribe_question: &'static str,
    pub unsubscribe_button: &'static str,
    pub unsubscribed: &'static str,
}

impl Texts {
    /// The scale's end labels for `metric`.
    pub fn ends(&self, metric: Metric) -> (&'static str, &'static str) {
        match metric {
            Metric::Nps => self.nps_ends,
            Metric::Csat => self.csat_ends,
            Metric::Ces => self.ces_ends,
            Metric::Text => ("", ""),
        }
    }
}

static DA: Texts = Texts {
    lang: "da",
    subject: "Hvordan gik det?",
    reply_hint: "Du kan også bare svare på denne e-mail med et tal og en kommentar.",
    unsubscribe_hint: "Vil du ikke have flere spørgeskemaer på e-mail?",
    unsubscribe_link: "Afmeld",
    nps_ends: ("Slet ikke sandsynligt", "Meget sandsynligt"),
    csat_ends: ("Meget utilfreds", "Meget tilfreds"),
    ces_ends: ("Meget svært", "Meget nemt"),
    your_answer: "Dit svar",
    comment_label: "Vil du fortælle os mere? (valgfrit)",
    send: "Send",
    thank_you: "Tak for dit svar!",
    close: "Luk",
    widget_title: "Feedback",
    widget_pick: "Vælg en score.",
    widget_error: "Svaret kunne ikke sendes. Prøv igen.",
    thank_you_detail: "Vi har modtaget din vurdering.",
    bad_link_title: "Linket virker ikke længere",
    bad_link_detail: "Undersøgelsen er lukket, eller linket er ufuldstændigt.",
    unsubscribe_question: "Vil du afmelde spørgeskemaer på e-mail?",
    unsubscribe_button: "Afmeld",
    unsubscribed: "Du er afmeldt og får ikke flere spørgeskemaer fra os på e-mail.",
};

static SV: Texts = Texts {
    lang: "sv",
    subject: "Hur gick det?",
    reply_hint: "Du kan också svara på det här mejlet med en siffra och en kommentar.",
    unsubscribe_hint: "Vill du inte få fler enkäter via e-post?",
    unsubscribe_link: "Avregistrera",
    nps_ends: ("Inte alls troligt", "Mycket troligt"),
    csat_ends: ("Mycket missnöjd", "Mycket nöjd"),
    ces_ends: ("Mycket svårt", "Mycket enkelt"),
    your_answer: "Ditt svar",
    comment_label: "Vill du berätta mer? (valfritt)",
    send: "Skicka",
    thank_you: "Tack för ditt svar!",
    close: "Stäng",
    widget_title: "Feedback",
    widget_pick: "Välj ett betyg.",
    widget_error: "Svaret kunde inte skickas. Försök igen.",
    thank_you_detail: "Vi har tagit emot ditt betyg.",
    bad_link_title: "Länken fungerar inte längre",
    bad_link_detail: "Enkäten är stängd eller länken är ofullständig.",
    unsubscribe_question: "Vill du avregistrera dig från enkäter via e-post?",
    unsubscribe_button: "Avregistrera",
    unsubscribed: "Du är avregistrerad och får inga fler enkäter från oss via e-post.",
};

static NB: Texts = Texts {
    lang: "nb",
    subject: "Hvordan gikk det?",
    reply_hint: "Du kan også svare på denne e-posten med et tall og en kommentar.",
    unsubscribe_hint: "Vil du ikke ha flere spørreundersøkelser på e-post?",
    unsubscribe_link: "Meld deg av",
    nps_ends: ("Svært lite sannsynlig", "Svært sannsynlig"),
    csat_ends: ("Svært misfornøyd", "Svært fornøyd"),
    ces_ends: ("Svært vanskelig", "Svært enkelt"),
    your_answer: "Ditt svar",
    comment_label: "Vil du fortelle oss mer? (valgfritt)",
    send: "Send",
    thank_you: "Takk for svaret!",
    close: "Lukk",
    widget_title: "Tilbakemelding",
    widget_pick: "Velg en score.",
    widget_error: "Svaret kunne ikke sendes. Prøv igjen.",
    thank_you_detail: "Vi har mottatt vurderingen din.",
    bad_link_title: "Lenken virker ikke lenger",
    bad_link_detail: "Undersøkelsen er lukket, eller lenken er ufullstendig.",
    unsubscribe_question: "Vil du melde deg av spørreundersøkelser på e-post?",
    unsubscribe_button: "Meld deg av",
    unsubscribed: "Du er meldt av og får ikke flere spørreundersøkelser fra oss på e-post.",
};

static EN: Texts = Texts {
    lang: "en",
    subject: "How did we do?",
    reply_hint: "You can also simply reply to this e-mail with a number and a comment.",
    unsubscribe_hint: "Rather not get surveys by e-mail?",
    unsubscribe_link: "Unsubscribe",
    nps_ends: ("Not at all likely", "Extremely likely"),
    csat_ends: ("Very dissatisfied", "Very satisfied"),
    ces_ends: ("Very difficult", "Very easy"),
    your_answer: "Your answer",
    comment_label: "Anything you would like to add? (optional)",
    send: "Send",
    thank_you: "Thank you for your answer!",
    close: "Close",
    widget_title: "Feedback",
    widget_pick: "Please choose a score.",
    widget_error: "Your answer could not be sent. Please try again.",
    thank_you_detail: "We have received your rating.",
    bad_link_title: "This link no longer works",
    bad_link_detail: "The survey has closed, or the link is incomplete.",
    unsubscribe_question: "Unsubscribe from surveys by e-mail?",
    unsubscribe_button: "Unsubscribe",
    unsubscribed: "You are unsubscribed and will get no more survey e-mails from us.",
};

static DE: Texts = Texts {
    lang: "de",
    subject: "Wie waren wir?",
    reply_hint:
        "Sie können auch einfach auf diese E-Mail mit einer Zahl und einem Kommentar antworten.",
    unsubscribe_hint: "Keine Umfragen per E-Mail mehr?",
    unsubscribe_link: "Abmelden",
    nps_ends: ("Überhaupt nicht wahrscheinlich", "Äußerst wahrscheinlich"),
    csat_ends: ("Sehr unzufrieden", "Sehr zufrieden"),
    ces_ends: ("Sehr schwierig", "Sehr einfach"),
    your_answer: "Ihre Antwort",
    comment_label: "Möchten Sie uns mehr erzählen? (optional)",
    send: "Senden",
    thank_you: "Vielen Dank für Ihre Antwort!",
    close: "Schließen",
    widget_title: "Feedback",
    widget_pick: "Bitte wählen Sie eine Bewertung.",
    widget_error: "Ihre Antwort konnte nicht gesendet werden. Bitte versuchen Sie es erneut.",
    thank_you_detail: "Wir haben Ihre Bewertung erhalten.",
    bad_link_title: "Dieser Link funktioniert nicht mehr",
    bad_link_detail: "Die Umfrage ist beendet, oder der Link ist unvollständig.",
    unsubscribe_question: "Von Umfragen per E-Mail abmelden?",
    unsubscribe_button: "Abmelden",
    unsubscribed: "Sie sind abgemeldet und erhalten keine Umfrage-E-Mails mehr von uns.",
};

static ALL: [&Texts; 5] = [&DA, &SV, &NB, &EN, &DE];

/// The texts for a language tag ("da", "nb-NO", "no"); English for any other.
pub fn for_language(tag: &str) -> &'static Texts {
    let primary = tag
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    // Norwegian without a written standard named: Bokmål.
    let primary = match primary.as_str() {
        "no" | "nn" => "nb",
        other => other,
    };
    ALL.iter()
        .copied()
        .find(|t| t.lang == primary)
        .unwrap_or(&EN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_resolve_with_english_as_the_fallback() {
        assert_eq!(for_language("da").lang, "da");
        assert_eq!(for_language("sv-SE").lang, "sv");
        assert_eq!(for_language("no").lang, "nb");
        assert_eq!(for_language("DE_at").lang, "de");
        assert_eq!(for_language("fr").lang, "en");
        assert_eq!(for_language("").lang, "en");
    }
}
