//! Reading a score out of a free-text reply ("9", "9/10", "5 tak!", "ti ud af ti", "neun"), in
//! Danish, Swedish, Norwegian, English and German.
//!
//! Written by hand: no crate reads number words across these languages, and the rules that
//! matter here are the survey's, not a language model's. The parser is conservative. A reply is
//! a score only when it holds exactly one number (a denominator like "/10" or "ud af ti" aside)
//! and that number is on the survey's scale; two numbers ("7-8", "7 eller 8"), a fraction
//! ("7,5") or a denominator that is not the scale's top is ambiguous and never guessed.

use crate::model::Scale;

/// What a reply says about the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// One number on the scale.
    Score(i16),
    /// One number, not on the scale ("6" to a 1–5 question).
    OutOfRange(i64),
    /// Several numbers, a range or a fraction: kept as text, never guessed.
    Ambiguous,
    /// No number at all.
    NoScore,
}

/// A reply read: the score, and whether the text says more than the score (then the whole text
/// is worth keeping as a comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReply {
    pub reading: Reading,
    pub has_remark: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(i64),
    /// Digits with a decimal separator inside ("7,5", "8.5").
    Fraction,
    Word(String),
    Slash,
}

/// Number words. `article` words double as "a/an" and count only alone; `collides_in` names
/// the languages where the word means something else, so it is ignored there.
struct NumberWord {
    word: &'static str,
    value: i64,
    article: bool,
    collides_in: &'static [&'static str],
}

const fn w(word: &'static str, value: i64) -> NumberWord {
    NumberWord {
        word,
        value,
        article: false,
        collides_in: &[],
    }
}

const fn article(word: &'static str, value: i64) -> NumberWord {
    NumberWord {
        word,
        value,
        article: true,
        collides_in: &[],
    }
}

const fn except(word: &'static str, value: i64, langs: &'static [&'static str]) -> NumberWord {
    NumberWord {
        word,
        value,
        article: false,
        collides_in: langs,
    }
}

const NUMBER_WORDS: &[NumberWord] = &[
    // Danish / Norwegian
    w("nul", 0),
    except("null", 0, &[]),
    article("en", 1),
    article("et", 1),
    article("ett", 1),
    article("ei", 1),
    except("to", 2, &["en", "de"]),
    w("tre", 3),
    except("fire", 4, &["en"]),
    w("fem", 5),
    w("seks", 6),
    w("syv", 7),
    w("sju", 7),
    w("otte", 8),
    w("åtte", 8),
    w("atte", 8),
    except("ni", 9, &["sv"]),
    w("ti", 10),
    w("elleve", 11),
    // Swedish
    w("noll", 0),
    w("två", 2),
    w("tva", 2),
    w("fyra", 4),
    except("sex", 6, &["en"]),
    w("åtta", 8),
    w("atta", 8),
    w("nio", 9),
    w("tio", 10),
    w("elva", 11),
    // English
    w("zero", 0),
    article("one", 1),
    w("two", 2),
    w("three", 3),
    w("four", 4),
    w("five", 5),
    w("six", 6),
    w("seven", 7),
    w("eight", 8),
    w("nine", 9),
    w("ten", 10),
    w("eleven", 11),
    // German
    w("eins", 1),
    article("ein", 1),
    article("eine", 1),
    w("zwei", 2),
    w("drei", 3),
    w("vier", 4),
    w("fünf", 5),
    w("fuenf", 5),
    w("sechs", 6),
    w("sieben", 7),
    w("acht", 8),
    w("neun", 9),
    w("zehn", 10),
    except("elf", 11, &["en"]),
];

/// Words that join a score to its scale's top: "8 ud af 10", "8 out of 10", "8 av 10",
/// "8 von 10".
const OUT_OF: &[&[&str]] = &[
    &["ud", "af"],
    &["af"],
    &["ut", "av"],
    &["utav"],
    &["av"],
    &["out", "of"],
    &["outta"],
    &["of"],
    &["von"],
    &["aus"],
];

/// Words that say nothing beyond the score: "5 tak!", "Score: 8", "Jeg giver 9".
const FILLER: &[&str] = &[
    "tak",
    "mange",
    "tack",
    "takk",
    "thanks",
    "thank",
    "you",
    "thx",
    "danke",
    "dank",
    "vielen",
    "score",
    "svar",
    "svaret",
    "answer",
    "antwort",
    "point",
    "points",
    "poäng",
    "poeng",
    "punkte",
    "stjerner",
    "stjärnor",
    "stars",
    "sterne",
    "jeg",
    "giver",
    "gir",
    "jag",
    "ger",
    "i",
    "give",
    "ich",
    "gebe",
    "it",
    "det",
    "ok",
    "okay",
    "hej",
    "hi",
    "hello",
    "hallo",
    "ja",
    "yes",
    "min",
    "mein",
    "my",
    "rating",
    "bewertung",
    "karakter",
    "betyg",
    "i'd",
    "say",
    "siger",
    "säger",
    "sier",
    "sage",
    "d",
    "s",
];

fn tokenize(text: &str) -> Vec<Token> {
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            // "7,5" and "8.5" are fractions; "8." and "8, tak" end a sentence or a clause.
            if i + 1 < chars.len() && matches!(chars[i], '.' | ',') && chars[i + 1].is_ascii_digit()
            {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                tokens.push(Token::Fraction);
                continue;
            }
            let value = digits
                .parse::<i64>()
                .unwrap_or(i64::MAX)
                .min(i64::from(u32::MAX));
            tokens.push(Token::Number(value));
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            if matches!(c, '/' | '⁄') {
                tokens.push(Token::Slash);
            } else if c == '½' {
                tokens.push(Token::Fraction);
            }
            i += 1;
        }
    }
    tokens
}

fn number_word(word: &str) -> Option<&'static NumberWord> {
    NUMBER_WORDS.iter().find(|n| n.word == word)
}

/// The primary language subtag of a tag, lower case ("da-DK" → "da"; Norwegian as "nb").
pub fn primary_language(tag: &str) -> String {
    let primary = tag
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match primary.as_str() {
        "no" | "nn" => "nb".to_owned(),
        _ => primary,
    }
}

/// A candidate number in the reply: its value and the index of its token.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    value: i64,
    at: usize,
}

/// Whether the tokens strictly between two candidates join them as "score out of top".
fn joins_out_of(between: &[Token]) -> bool {
    if between == [Token::Slash] {
        return true;
    }
    let words: Vec<&str> = between
        .iter()
        .map(|t| match t {
            Token::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default();
    !words.is_empty() && OUT_OF.contains(&words.as_slice())
}

/// Reads the score of a reply to a question on `scale`. `language` (the language the question
/// was asked in) tells which number words mean something else: Swedish "ni" is "you".
pub fn read(text: &str, scale: Scale, language: Option<&str>) -> ReadReply {
    let tokens = tokenize(text);
    let language = language.map(primary_language);
    let words: Vec<(usize, &str)> = tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t {
            Token::Word(w) => Some((i, w.as_str())),
            _ => None,
        })
        .collect();
    let meaningful_words = words
        .iter()
        .filter(|(_, w)| !FILLER.contains(w) && !OUT_OF.iter().any(|o| o.contains(w)))
        .count();

    let reading = if tokens.contains(&Token::Fraction) {
        Reading::Ambiguous
    } else {
        let digits: Vec<Candidate> = tokens
            .iter()
            .enumerate()
            .filter_map(|(at, t)| match t {
                Token::Number(value) => Some(Candidate { value: *value, at }),
                _ => None,
            })
            .collect();
        let candidates = if digits.is_empty() {
            word_candidates(&tokens, &words, meaningful_words, language.as_deref())
        } else {
            // Digits are what people type; number words beside them are prose.
            digits
        };
        judge(&tokens, &candidates, scale)
    };
    // Words that are neither numbers, fillers nor "out of" make the text worth keeping.
    let has_remark = words.iter().any(|(_, w)| {
        !FILLER.contains(w) && !OUT_OF.iter().any(|o| o.contains(w)) && number_word(w).is_none()
    });
    ReadReply {
        reading,
        has_remark,
    }
}

/// Number words that count as numbers: a plain number word when the reply is short, starts with
/// it or says "out of"; an article ("en", "one") only when it stands alone.
fn word_candidates(
    tokens: &[Token],
    words: &[(usize, &str)],
    meaningful_words: usize,
    language: Option<&str>,
) -> Vec<Candidate> {
    let numbers: Vec<(usize, &NumberWord)> = words
        .iter()
        .filter_map(|(at, w)| number_word(w).map(|n| (*at, n)))
        .filter(|(_, n)| !language.is_some_and(|l| n.collides_in.contains(&l)))
        .collect();
    let in_out_of = |at: usize| {
        numbers.iter().any(|(other, _)| {
            let (a, b) = if *other < at {
                (*other, at)
            } else {
                (at, *other)
            };
            *other != at && joins_out_of(&tokens[a + 1..b])
        })
    };
    let first_word = words.first().map(|(at, _)| *at);
    numbers
        .iter()
        .filter(|(at, n)| {
            if n.article {
                meaningful_words <= 1 || in_out_of(*at)
            } else {
                meaningful_words <= 3 || Some(*at) == first_word || in_out_of(*at)
            }
        })
        .map(|(at, n)| Candidate {
            value: n.value,
            at: *at,
        })
        .collect()
}

fn judge(tokens: &[Token], candidates: &[Candidate], scale: Scale) -> Reading {
    let (min, max) = scale.range();
    let (min, max) = (i64::from(min), i64::from(max));
    let mut values: Vec<i64> = Vec::new();
    let mut i = 0;
    while i < candidates.len() {
        let c = candidates[i];
        if let Some(next) = candidates.get(i + 1) {
            if joins_out_of(&tokens[c.at + 1..next.at]) {
                // "8/10", "otte ud af ti": the second number is the scale's top, or the reply
                // is on another scale than the question's.
                if next.value != max {
                    return Reading::Ambiguous;
                }
                values.push(c.value);
                i += 2;
                continue;
            }
        }
        values.push(c.value);
        i += 1;
    }
    values.sort_unstable();
    values.dedup();
    match values.as_slice() {
        [] => Reading::NoScore,
        [v] if (min..=max).contains(v) => Reading::Score(*v as i16),
        [v] => Reading::OutOfRange(*v),
        _ => Reading::Ambiguous,
    }
}

/// The text for `language` from a per-language map: the exact tag, else its primary language,
/// else any entry whose primary language matches ("da" finds "da-DK").
pub fn localized<'a>(
    texts: &'a std::collections::BTreeMap<String, String>,
    language: Option<&str>,
) -> Option<&'a str> {
    let language = language?;
    if let Some(t) = texts.get(language) {
        return Some(t);
    }
    let primary = primary_language(language);
    texts
        .iter()
        .find(|(tag, _)| primary_language(tag) == primary)
        .map(|(_, t)| t.as_str())
}

/// The one follow-up question when a reply held no usable score, in the customer's language
/// (Danish, Swedish, Norwegian, German; English otherwise).
pub fn ask_for_one_number(language: Option<&str>, scale: Scale) -> String {
    let (min, max) = scale.range();
    match language.map(primary_language).as_deref() {
        Some("da") => format!("Svar venligst med ét tal fra {min} til {max}."),
        Some("sv") => format!("Svara gärna med en siffra från {min} till {max}."),
        Some("nb") => format!("Vennligst svar med ett tall fra {min} til {max}."),
        Some("de") => format!("Bitte antworten Sie mit einer Zahl von {min} bis {max}."),
        _ => format!("Please answer with one number from {min} to {max}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Reading::{Ambiguous as A, NoScore as N, OutOfRange as O, Score as S};

    const NPS: Scale = Scale::ZeroToTen;
    const CSAT: Scale = Scale::OneToFive;
    const CES: Scale = Scale::OneToSeven;

    /// (reply, scale, question language, expected reading)
    #[rustfmt::skip]
    const CASES: &[(&str, Scale, &str, Reading)] = &[
        // Digits with noise
        ("9", NPS, "da", S(9)),
        ("9/10", NPS, "da", S(9)),
        ("10!", NPS, "da", S(10)),
        ("Score: 8", NPS, "en", S(8)),
        ("5 tak!", CSAT, "da", S(5)),
        ("8 - meget god service", NPS, "da", S(8)),
        ("  7  ", NPS, "da", S(7)),
        ("0", NPS, "en", S(0)),
        ("10", NPS, "sv", S(10)),
        ("10/10", NPS, "en", S(10)),
        ("10 / 10", NPS, "en", S(10)),
        ("9 / 10 :)", NPS, "en", S(9)),
        ("8 ud af 10", NPS, "da", S(8)),
        ("8 af 10", NPS, "da", S(8)),
        ("8 av 10", NPS, "sv", S(8)),
        ("8 utav 10", NPS, "sv", S(8)),
        ("8 ut av 10", NPS, "nb", S(8)),
        ("8 out of 10", NPS, "en", S(8)),
        ("8 of 10", NPS, "en", S(8)),
        ("8 von 10", NPS, "de", S(8)),
        ("4/5", CSAT, "da", S(4)),
        ("4 ud af 5", CSAT, "da", S(4)),
        ("6/7", CES, "en", S(6)),
        ("5.", CSAT, "da", S(5)),
        ("5, tak", CSAT, "da", S(5)),
        ("9!!!", NPS, "en", S(9)),
        ("9 :-)", NPS, "en", S(9)),
        ("9 😀", NPS, "en", S(9)),
        ("😀 9", NPS, "en", S(9)),
        ("Jeg giver 9", NPS, "da", S(9)),
        ("Jag ger 8", NPS, "sv", S(8)),
        ("Jeg gir 7", NPS, "nb", S(7)),
        ("Ich gebe 6", NPS, "de", S(6)),
        ("I'd say 9", NPS, "en", S(9)),
        ("9 tak for hjælpen", NPS, "da", S(9)),
        ("9 tack för hjälpen", NPS, "sv", S(9)),
        ("9 takk for hjelpen", NPS, "nb", S(9)),
        ("9 thanks for the help", NPS, "en", S(9)),
        ("9 danke für die Hilfe", NPS, "de", S(9)),
        ("Svar: 4", CSAT, "da", S(4)),
        ("4 stjerner", CSAT, "da", S(4)),
        ("4 stars", CSAT, "en", S(4)),
        ("4 Sterne", CSAT, "de", S(4)),
        ("4 stjärnor", CSAT, "sv", S(4)),
        ("5 meget tilfreds", CSAT, "da", S(5)),
        ("10 - meget tilfreds", NPS, "da", S(10)),
        ("1 - dårlig service", CSAT, "da", S(1)),
        ("7 hurtig og venlig hjælp", CES, "da", S(7)),
        ("9 9", NPS, "da", S(9)),
        ("5 - 5 stjerner", CSAT, "da", S(5)),
        ("ni (9)", NPS, "da", S(9)),
        ("9 ni", NPS, "da", S(9)),
        ("Min score er 8", NPS, "da", S(8)),
        ("3", CES, "de", S(3)),
        ("1", CSAT, "en", S(1)),
        ("1", NPS, "en", S(1)),
        ("7", CES, "sv", S(7)),
        ("09", NPS, "da", S(9)),
        // Number words, Danish
        ("ni", NPS, "da", S(9)),
        ("Ni", NPS, "da", S(9)),
        ("ti", NPS, "da", S(10)),
        ("TI!", NPS, "da", S(10)),
        ("nul", NPS, "da", S(0)),
        ("fem", CSAT, "da", S(5)),
        ("fem tak", CSAT, "da", S(5)),
        ("fire", CSAT, "da", S(4)),
        ("to", CSAT, "da", S(2)),
        ("tre", CSAT, "da", S(3)),
        ("en", CSAT, "da", S(1)),
        ("et", CSAT, "da", S(1)),
        ("seks", CES, "da", S(6)),
        ("syv", CES, "da", S(7)),
        ("otte", NPS, "da", S(8)),
        ("ti ud af ti", NPS, "da", S(10)),
        ("otte ud af ti", NPS, "da", S(8)),
        ("fire ud af fem", CSAT, "da", S(4)),
        ("en ud af fem", CSAT, "da", S(1)),
        ("fem stjerner", CSAT, "da", S(5)),
        ("Fem! Super service", CSAT, "da", S(5)),
        ("ni tak", NPS, "da", S(9)),
        ("jeg giver ni", NPS, "da", S(9)),
        // Swedish
        ("nio", NPS, "sv", S(9)),
        ("tio", NPS, "sv", S(10)),
        ("noll", NPS, "sv", S(0)),
        ("fyra", CSAT, "sv", S(4)),
        ("två", CSAT, "sv", S(2)),
        ("sex", CES, "sv", S(6)),
        ("sju", CES, "sv", S(7)),
        ("åtta", NPS, "sv", S(8)),
        ("tio av tio", NPS, "sv", S(10)),
        ("fem tack", CSAT, "sv", S(5)),
        ("ett", CSAT, "sv", S(1)),
        // Norwegian
        ("ti", NPS, "nb", S(10)),
        ("ni", NPS, "nb", S(9)),
        ("åtte", NPS, "nb", S(8)),
        ("sju", CES, "nb", S(7)),
        ("ti av ti", NPS, "nb", S(10)),
        ("fem takk", CSAT, "nb", S(5)),
        ("null", NPS, "no", S(0)),
        // English
        ("nine", NPS, "en", S(9)),
        ("Ten!", NPS, "en", S(10)),
        ("ten out of ten", NPS, "en", S(10)),
        ("eight out of ten", NPS, "en", S(8)),
        ("zero", NPS, "en", S(0)),
        ("five", CSAT, "en", S(5)),
        ("four stars", CSAT, "en", S(4)),
        ("one", CSAT, "en", S(1)),
        ("seven", CES, "en", S(7)),
        ("I'd say nine", NPS, "en", S(9)),
        ("three thanks", CSAT, "en", S(3)),
        // German
        ("neun", NPS, "de", S(9)),
        ("zehn", NPS, "de", S(10)),
        ("Zehn von zehn", NPS, "de", S(10)),
        ("acht", NPS, "de", S(8)),
        ("fünf", CSAT, "de", S(5)),
        ("fuenf", CSAT, "de", S(5)),
        ("vier Sterne", CSAT, "de", S(4)),
        ("eins", CSAT, "de", S(1)),
        ("null", NPS, "de", S(0)),
        ("sieben", CES, "de", S(7)),
        ("sechs", CES, "de", S(6)),
        ("zwei", CSAT, "de", S(2)),
        ("drei danke", CSAT, "de", S(3)),
        // Words answered in another language than the question's
        ("nine", NPS, "da", S(9)),
        ("neun", NPS, "sv", S(9)),
        ("tio", NPS, "da", S(10)),
        // Out of range for the scale
        ("6", CSAT, "da", O(6)),
        ("0", CSAT, "da", O(0)),
        ("11", NPS, "en", O(11)),
        ("8", CES, "en", O(8)),
        ("100", NPS, "en", O(100)),
        ("seks", CSAT, "da", O(6)),
        ("elleve", NPS, "da", O(11)),
        ("elva", NPS, "sv", O(11)),
        ("eleven", NPS, "en", O(11)),
        ("elf", NPS, "de", O(11)),
        ("10", CSAT, "da", O(10)),
        ("+4522334455", NPS, "da", O(4294967295)),
        // Ambiguous: never guessed
        ("7-8", NPS, "da", A),
        ("7 - 8", NPS, "da", A),
        ("7–8", NPS, "da", A),
        ("7 eller 8", NPS, "da", A),
        ("7 or 8", NPS, "en", A),
        ("between 7 and 8", NPS, "en", A),
        ("mellem 7 og 8", NPS, "da", A),
        ("mellan 7 och 8", NPS, "sv", A),
        ("7 oder 8", NPS, "de", A),
        ("zwischen 7 und 8", NPS, "de", A),
        ("syv eller otte", NPS, "da", A),
        ("sju eller åtta", NPS, "sv", A),
        ("seven or eight", NPS, "en", A),
        ("7,5", NPS, "da", A),
        ("8.5", NPS, "en", A),
        ("4½", CSAT, "da", A),
        ("8/5", NPS, "da", A),
        ("8 ud af 5", NPS, "da", A),
        ("4/10", CSAT, "da", A),
        ("9/10 og 8/10", NPS, "da", A),
        ("1 2 3", CSAT, "en", A),
        ("kl 14:30", NPS, "da", A),
        ("3-4 dage ventetid", CSAT, "da", A),
        // No number
        ("", NPS, "da", N),
        ("   ", NPS, "da", N),
        ("hurtig og venlig hjælp", CSAT, "da", N),
        ("tak", CSAT, "da", N),
        ("😀", NPS, "en", N),
        ("👍", CSAT, "da", N),
        ("Super service!", NPS, "en", N),
        ("Meget tilfreds", CSAT, "da", N),
        ("Ni var jättebra", NPS, "sv", N),
        ("Ni var", NPS, "sv", N),
        ("Det var en god oplevelse", CSAT, "da", N),
        ("Es war eine gute Erfahrung", CSAT, "de", N),
        ("one of the best", NPS, "en", N),
        ("went to the shop", NPS, "en", N),
        ("the fire alarm went off", NPS, "en", N),
        ("Hvem er det?", CSAT, "da", N),
        ("thanks a lot", NPS, "en", N),
        ("Det tog lang tid, men de var søde og det løste sig til sidst", CSAT, "da", N),
    ];

    #[test]
    fn reads_scores_in_five_languages() {
        assert!(CASES.len() >= 150, "{} cases", CASES.len());
        let mut failures = Vec::new();
        for (text, scale, lang, expected) in CASES {
            let got = read(text, *scale, Some(lang)).reading;
            if got != *expected {
                failures.push(format!(
                    "{text:?} ({lang}, {scale:?}): got {got:?}, want {expected:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn words_that_collide_count_alone_when_the_language_is_unknown() {
        assert_eq!(read("ni", NPS, None).reading, S(9));
        assert_eq!(read("to", CSAT, None).reading, S(2));
        assert_eq!(read("ni", NPS, Some("sv-SE")).reading, N);
        assert_eq!(read("to", CSAT, Some("en")).reading, N);
    }

    #[test]
    fn a_remark_is_text_beyond_the_score() {
        assert!(!read("5 tak!", CSAT, Some("da")).has_remark);
        assert!(!read("Score: 8", NPS, Some("en")).has_remark);
        assert!(!read("ti ud af ti", NPS, Some("da")).has_remark);
        assert!(read("8 - meget god service", NPS, Some("da")).has_remark);
        assert!(read("hurtig og venlig hjælp", CSAT, Some("da")).has_remark);
    }

    #[test]
    fn asks_in_the_customers_language() {
        assert_eq!(
            ask_for_one_number(Some("da-DK"), CSAT),
            "Svar venligst med ét tal fra 1 til 5."
        );
        assert_eq!(
            ask_for_one_number(Some("sv"), NPS),
            "Svara gärna med en siffra från 0 till 10."
        );
        assert_eq!(
            ask_for_one_number(Some("no"), CES),
            "Vennligst svar med ett tall fra 1 til 7."
        );
        assert_eq!(
            ask_for_one_number(Some("de"), CSAT),
            "Bitte antworten Sie mit einer Zahl von 1 bis 5."
        );
        assert_eq!(
            ask_for_one_number(None, NPS),
            "Please answer with one number from 0 to 10."
        );
        assert_eq!(
            ask_for_one_number(Some("fr"), NPS),
            "Please answer with one number from 0 to 10."
        );
    }
}
