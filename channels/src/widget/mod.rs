//! The web widget: a site's settings (which origins may embed it, which survey it shows, when,
//! and how it looks), checked here as pure functions, and the signed values that travel
//! through a visitor's browser (`token.rs`): the impression a shown widget answers under, and
//! the site backend's proof of who the visitor is.

pub mod token;

use serde::{Deserialize, Serialize};

/// The languages the widget speaks (its words come from `email::texts`).
pub const LANGUAGES: [&str; 5] = ["da", "sv", "nb", "en", "de"];
pub const MAX_ORIGINS: usize = 20;
pub const MAX_PATHS: usize = 20;
/// The longest wait after page load a site may ask for.
pub const MAX_DELAY_SECONDS: u32 = 600;
pub const MAX_REST_DAYS: u32 = 730;
/// WCAG 2.2 AA: text against its background.
pub const MIN_TEXT_CONTRAST: f64 = 4.5;

/// What a tenant sets for a site (`PUT /v1/sites/{key}`), as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    /// Exact origins (`https://www.acme.example`), or one subdomain pattern per entry
    /// (`https://*.acme.example`).
    pub allowed_origins: Vec<String>,
    /// The key of the survey shown; its channels must include `widget`.
    pub survey: String,
    #[serde(default)]
    pub display: Display,
    #[serde(default)]
    pub theme: Theme,
    /// The languages offered, in order of preference; the first is used when the visitor's
    /// browser asks for none of them. Left out: those of the survey's that the widget speaks.
    #[serde(default)]
    pub languages: Vec<String>,
}

/// When the widget appears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Display {
    /// Seconds after page load (or after `FeedbackWidget.show()` is called: none).
    pub delay_seconds: u32,
    /// Path patterns the widget appears on (`/checkout`, `/help/*`, `/docs/**`); `*` matches
    /// within one path segment, `**` across segments. Empty: every path.
    pub paths: Vec<String>,
    /// The share of visitors asked, 0 to 1.
    pub share: f64,
    /// An anonymous visitor is shown the widget at most once per this many days (remembered
    /// in the browser only with `remember_visitor`). Identified visitors follow the survey's
    /// fatigue rules, shared with every other channel.
    pub rest_days: u32,
    /// Whether the widget may keep a visitor id and the time it was last shown in the
    /// browser's localStorage (never a cookie). Off: nothing is stored on the visitor's device.
    pub remember_visitor: bool,
}

impl Default for Display {
    fn default() -> Self {
        Display {
            delay_seconds: 3,
            paths: Vec::new(),
            share: 1.0,
            rest_days: 90,
            remember_visitor: false,
        }
    }
}

/// How the widget looks: CSS custom properties inside its shadow root. The default theme has a
/// light and a dark variant (`prefers-color-scheme`); a theme that sets any colour is the
/// site's own, over the light defaults, in both schemes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Theme {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accent_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub font: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub radius: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

/// The default theme's colours, light and dark (what `widget.js` uses for a colour left out).
pub struct Palette {
    pub accent: &'static str,
    pub accent_text: &'static str,
    pub background: &'static str,
    pub text: &'static str,
}

pub const LIGHT: Palette = Palette {
    accent: "#1f4e79",
    accent_text: "#ffffff",
    background: "#ffffff",
    text: "#1a1a1a",
};
pub const DARK: Palette = Palette {
    accent: "#9ccaff",
    accent_text: "#0b1b2b",
    background: "#1e1e1e",
    text: "#f2f2f2",
};

pub const POSITIONS: [&str; 4] = ["bottom-right", "bottom-left", "top-right", "top-left"];

/// A field's problem, named as the API's 422 names it.
pub type Problem = (String, String);

impl SiteSettings {
    /// Every problem with the settings (the survey is checked by the caller, who can read it).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut add = |field: String, message: String| out.push((field, message));
        if self.allowed_origins.is_empty() {
            add("allowed_origins".into(), "name at least one origin".into());
        }
        if self.allowed_origins.len() > MAX_ORIGINS {
            add(
                "allowed_origins".into(),
                format!("at most {MAX_ORIGINS} origins"),
            );
        }
        for (i, o) in self.allowed_origins.iter().enumerate() {
            if let Err(e) = AllowedOrigin::parse(o) {
                add(format!("allowed_origins[{i}]"), e);
            }
        }
        if self.survey.trim().is_empty() {
            add("survey".into(), "name the survey the widget shows".into());
        }
        let d = &self.display;
        if d.delay_seconds > MAX_DELAY_SECONDS {
            add(
                "display.delay_seconds".into(),
                format!("at most {MAX_DELAY_SECONDS}"),
            );
        }
        if d.paths.len() > MAX_PATHS {
            add(
                "display.paths".into(),
                format!("at most {MAX_PATHS} patterns"),
            );
        }
        for (i, p) in d.paths.iter().enumerate() {
            let ok = p.starts_with('/')
                && p.len() <= 200
                && p.chars()
                    .all(|c| c.is_ascii_graphic() && c != '?' && c != '#');
            if !ok {
                add(
                    format!("display.paths[{i}]"),
                    "a path starting with `/`, at most 200 characters, no query or fragment".into(),
                );
            }
        }
        if !(0.0..=1.0).contains(&d.share) || d.share.is_nan() {
            add("display.share".into(), "a share from 0 to 1".into());
        }
        if d.rest_days > MAX_REST_DAYS {
            add(
                "display.rest_days".into(),
                format!("at most {MAX_REST_DAYS} days"),
            );
        }
        for (field, problem) in self.theme.problems() {
            add(format!("theme.{field}"), problem);
        }
        for (i, l) in self.languages.iter().enumerate() {
            if !LANGUAGES.contains(&l.as_str()) {
                add(
                    format!("languages[{i}]"),
                    format!("expected one of {}", LANGUAGES.join(", ")),
                );
            } else if self.languages[..i].contains(l) {
                add(format!("languages[{i}]"), format!("`{l}` is named twice"));
            }
        }
        out
    }

    /// Whether a request's `Origin` header is one the site allows.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let Ok(origin) = RequestOrigin::parse(origin) else {
            return false;
        };
        self.allowed_origins
            .iter()
            .filter_map(|o| AllowedOrigin::parse(o).ok())
            .any(|allowed| allowed.matches(&origin))
    }

    /// Whether the widget appears on this page path.
    pub fn shows_on(&self, path: &str) -> bool {
        self.display.paths.is_empty()
            || self
                .display
                .paths
                .iter()
                .any(|p| path_matches(p.as_bytes(), path.as_bytes()))
    }

    /// The language to speak: the first of the visitor's that the site offers (`da-DK` is
    /// `da`; `no` and `nn` are `nb`), else the site's first.
    pub fn language_for<'a>(&'a self, wanted: impl IntoIterator<Item = &'a str>) -> &'a str {
        wanted
            .into_iter()
            .filter_map(|tag| {
                let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
                let primary = match primary.as_str() {
                    "no" | "nn" => "nb".to_owned(),
                    _ => primary,
                };
                self.languages.iter().find(|l| **l == primary)
            })
            .next()
            .or_else(|| self.languages.first())
            .map(String::as_str)
            .unwrap_or("en")
    }
}

impl Theme {
    /// Whether the site chose any colour (then its palette replaces both default variants).
    pub fn sets_colours(&self) -> bool {
        self.accent.is_some()
            || self.accent_text.is_some()
            || self.background.is_some()
            || self.text.is_some()
    }

    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let colours = [
            ("accent", &self.accent),
            ("accent_text", &self.accent_text),
            ("background", &self.background),
            ("text", &self.text),
        ];
        for (field, value) in colours {
            if let Some(v) = value {
                if parse_colour(v).is_none() {
                    out.push((field.into(), "a colour as #rgb or #rrggbb".into()));
                }
            }
        }
        if let Some(font) = &self.font {
            // The value goes into a CSS custom property: letters, digits, spaces, commas,
            // hyphens and quotes only, so it cannot end the declaration.
            let ok = !font.is_empty()
                && font.len() <= 200
                && font
                    .chars()
                    .all(|c| c.is_alphanumeric() || " ,-'\"".contains(c));
            if !ok {
                out.push((
                    "font".into(),
                    "a font family list: letters, digits, spaces, commas, hyphens and quotes"
                        .into(),
                ));
            }
        }
        if let Some(radius) = &self.radius {
            let ok = radius
                .strip_suffix("px")
                .and_then(|n| n.parse::<u8>().ok())
                .is_some_and(|n| n <= 32);
            if !ok {
                out.push(("radius".into(), "0px to 32px".into()));
            }
        }
        if let Some(position) = &self.position {
            if !POSITIONS.contains(&position.as_str()) {
                out.push((
                    "position".into(),
                    format!("expected one of {}", POSITIONS.join(", ")),
                ));
            }
        }
        if !out.is_empty() {
            return out;
        }
        // Contrast of what the visitor sees: the default theme is checked in a unit test; a
        // site's colours over the light defaults.
        if !self.sets_colours() {
            return out;
        }
        {
            let palette = &LIGHT;
            let pick = |v: &Option<String>, d: &'static str| v.clone().unwrap_or_else(|| d.into());
            let pairs = [
                (
                    "text",
                    pick(&self.text, palette.text),
                    pick(&self.background, palette.background),
                ),
                (
                    "accent_text",
                    pick(&self.accent_text, palette.accent_text),
                    pick(&self.accent, palette.accent),
                ),
                (
                    "accent",
                    pick(&self.accent, palette.accent),
                    pick(&self.background, palette.background),
                ),
            ];
            for (field, fg, bg) in pairs {
                let ratio = contrast(&fg, &bg).unwrap_or(0.0);
                if ratio < MIN_TEXT_CONTRAST {
                    out.push((
                        field.into(),
                        format!(
                            "{fg} on {bg} has a contrast of {ratio:.2}:1; at least \
                             {MIN_TEXT_CONTRAST}:1"
                        ),
                    ));
                }
            }
        }
        out
    }
}

/// An entry of `allowed_origins`: a scheme, a host (or, with `*.`, every subdomain of one) and
/// a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedOrigin {
    scheme: String,
    host: String,
    /// `*.acme.example`: any host that ends in `.acme.example` (not `acme.example` itself).
    subdomains: bool,
    port: Option<u16>,
}

/// A request's `Origin`, parsed.
struct RequestOrigin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl RequestOrigin {
    fn parse(origin: &str) -> Result<RequestOrigin, String> {
        let url = url::Url::parse(origin).map_err(|_| "not an origin".to_owned())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("http or https only".into());
        }
        let host = url.host_str().ok_or("no host")?.to_ascii_lowercase();
        Ok(RequestOrigin {
            scheme: url.scheme().to_owned(),
            host,
            port: url.port(),
        })
    }
}

impl AllowedOrigin {
    fn parse(entry: &str) -> Result<AllowedOrigin, String> {
        let message = "an origin such as https://www.acme.example (scheme, host and port only), \
                       or https://*.acme.example for its subdomains";
        let (scheme, rest) = entry.split_once("://").ok_or(message)?;
        let (subdomains, plain) = match rest.strip_prefix("*.") {
            Some(after) => (true, format!("{scheme}://{after}")),
            None => (false, entry.to_owned()),
        };
        if plain.contains('*') {
            return Err(message.into());
        }
        let url = url::Url::parse(&plain).map_err(|_| message.to_owned())?;
        let bare = url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none()
            && !plain.trim_end_matches('/').contains(['?', '#'])
            && plain.matches('/').count() == 2;
        if !bare || !matches!(url.scheme(), "http" | "https") {
            return Err(message.into());
        }
        let host = url.host_str().ok_or(message)?.to_ascii_lowercase();
        // A pattern over a top-level domain (`*.com`) allows the whole world.
        if subdomains && !host.contains('.') {
            return Err(
                "a subdomain pattern needs a registered domain: https://*.acme.example".into(),
            );
        }
        Ok(AllowedOrigin {
            scheme: url.scheme().to_owned(),
            host,
            subdomains,
            port: url.port(),
        })
    }

    fn matches(&self, origin: &RequestOrigin) -> bool {
        if origin.scheme != self.scheme || origin.port != self.port {
            return false;
        }
        if self.subdomains {
            origin
                .host
                .strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            origin.host == self.host
        }
    }
}

/// Glob matching for page paths: `**` any characters, `*` any but `/`. By hand: the patterns
/// are short and there is no crate whose glob treats `/` this way without a file system.
fn path_matches(pattern: &[u8], path: &[u8]) -> bool {
    match pattern {
        [] => path.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=path.len()).any(|i| path_matches(rest, &path[i..])),
        [b'*', rest @ ..] => (0..=path.len())
            .take_while(|&i| i == 0 || path[i - 1] != b'/')
            .any(|i| path_matches(rest, &path[i..])),
        [c, rest @ ..] => path.first() == Some(c) && path_matches(rest, &path[1..]),
    }
}

fn parse_colour(value: &str) -> Option<[f64; 3]> {
    let hex = value.strip_prefix('#')?;
    let expand = |s: &str| -> Option<Vec<u8>> {
        match s.len() {
            3 => s
                .chars()
                .map(|c| u8::from_str_radix(&format!("{c}{c}"), 16).ok())
                .collect(),
            6 => (0..3)
                .map(|i| u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok())
                .collect(),
            _ => None,
        }
    };
    let rgb = expand(hex)?;
    Some([rgb[0] as f64, rgb[1] as f64, rgb[2] as f64])
}

/// WCAG 2.x relative luminance of an sRGB colour.
fn luminance(rgb: [f64; 3]) -> f64 {
    let channel = |c: f64| {
        let c = c / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])
}

/// The WCAG contrast ratio of two colours (1 to 21).
pub fn contrast(a: &str, b: &str) -> Option<f64> {
    let (la, lb) = (luminance(parse_colour(a)?), luminance(parse_colour(b)?));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    Some((hi + 0.05) / (lo + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(origins: &[&str]) -> SiteSettings {
        SiteSettings {
            allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            survey: "web-nps".into(),
            display: Display::default(),
            theme: Theme::default(),
            languages: LANGUAGES.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    #[test]
    fn origins_match_exactly_or_by_an_explicit_subdomain_pattern() {
        let s = site(&[
            "https://www.acme.example",
            "https://*.shop.example",
            "http://127.0.0.1:8080",
        ]);
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert!(s.allows_origin("https://www.acme.example"));
        assert!(s.allows_origin("https://WWW.acme.example"));
        assert!(
            s.allows_origin("https://www.acme.example:443"),
            "the default port"
        );
        assert!(s.allows_origin("https://eu.shop.example"));
        assert!(s.allows_origin("https://a.b.shop.example"));
        assert!(s.allows_origin("http://127.0.0.1:8080"));
        for refused in [
            "http://www.acme.example",
            "https://acme.example",
            "https://www.acme.example:8443",
            "https://www.acme.example.evil.example",
            "https://evilwww.acme.example",
            "https://shop.example",
            "https://evilshop.example",
            "http://127.0.0.1:8081",
            "null",
            "",
            "file://",
        ] {
            assert!(!s.allows_origin(refused), "{refused}");
        }
    }

    #[test]
    fn bad_origins_are_named() {
        for bad in [
            "*",
            "https://*",
            "https://*.com",
            "https://www.*.example",
            "https://www.acme.example/path",
            "https://user@www.acme.example",
            "ftp://www.acme.example",
            "www.acme.example",
            "https://www.acme.example?x=1",
        ] {
            let problems = site(&[bad]).problems();
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            assert_eq!(problems[0].0, "allowed_origins[0]", "{bad}");
        }
        assert!(site(&[]).problems()[0].0 == "allowed_origins");
    }

    #[test]
    fn paths_match_by_segment_and_across_segments() {
        let mut s = site(&["https://a.example"]);
        assert!(s.shows_on("/anything/at/all"), "no patterns: every path");
        s.display.paths = vec!["/checkout".into(), "/help/*".into(), "/docs/**".into()];
        assert!(s.shows_on("/checkout"));
        assert!(!s.shows_on("/checkout/done"));
        assert!(s.shows_on("/help/returns"));
        assert!(!s.shows_on("/help/returns/eu"));
        assert!(s.shows_on("/docs/a/b/c"));
        assert!(!s.shows_on("/"));
        s.display.paths = vec!["/*/cart".into()];
        assert!(s.shows_on("/da/cart"));
        assert!(!s.shows_on("/da/dk/cart"));
    }

    #[test]
    fn languages_follow_the_browser_within_the_sites_list() {
        let mut s = site(&["https://a.example"]);
        s.languages = vec!["da".into(), "en".into()];
        assert_eq!(s.language_for(["fr-FR", "en-GB", "da"]), "en");
        assert_eq!(s.language_for(["da-DK"]), "da");
        assert_eq!(
            s.language_for(["sv"]),
            "da",
            "not offered: the site's first"
        );
        s.languages = vec!["nb".into()];
        assert_eq!(s.language_for(["no"]), "nb");
    }

    #[test]
    fn the_default_theme_meets_wcag_aa_and_bad_themes_are_refused() {
        for palette in [&LIGHT, &DARK] {
            assert!(contrast(palette.text, palette.background).unwrap() >= 4.5);
            assert!(contrast(palette.accent_text, palette.accent).unwrap() >= 4.5);
            assert!(contrast(palette.accent, palette.background).unwrap() >= 4.5);
        }
        assert!((contrast("#000", "#fff").unwrap() - 21.0).abs() < 1e-9);
        let mut s = site(&["https://a.example"]);
        s.theme.accent = Some("#ffcc00".into()); // yellow on white: 1.6:1
        let fields: Vec<String> = s.problems().into_iter().map(|p| p.0).collect();
        assert!(fields.contains(&"theme.accent".to_owned()), "{fields:?}");
        s.theme = Theme {
            accent: Some("#0b5".into()),
            font: Some("x; } body { display: none".into()),
            radius: Some("99px".into()),
            position: Some("middle".into()),
            ..Theme::default()
        };
        let fields: Vec<String> = s.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["theme.font", "theme.radius", "theme.position"]);
    }

    #[test]
    fn display_and_languages_are_bounded() {
        let mut s = site(&["https://a.example"]);
        s.display = Display {
            delay_seconds: 601,
            paths: vec!["checkout".into()],
            share: 1.5,
            rest_days: 1000,
            remember_visitor: true,
        };
        s.languages = vec!["da".into(), "fr".into(), "da".into()];
        let fields: Vec<String> = s.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(
            fields,
            [
                "display.delay_seconds",
                "display.paths[0]",
                "display.share",
                "display.rest_days",
                "languages[1]",
                "languages[2]"
            ]
        );
    }
}
