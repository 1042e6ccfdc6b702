//! The gateway's words, typed, in one place: channels, invitation states, and what became of a
//! decision or a reply. Policy, storage and HTTP share these; each is stored and shown as the
//! same lowercase string as always, so no data migrates.

use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr, VariantArray};

/// What every word list below derives: its lowercase string form for storage, the API and
/// logs (`as_str`, `Display`, `FromStr`, serde), and the list of all its values.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            Display, EnumString, IntoStaticStr, VariantArray,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            pub fn parse(s: &str) -> Option<Self> {
                s.parse().ok()
            }

            /// Every value's string form, joined for an error message.
            pub fn list() -> String {
                Self::VARIANTS.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

words! {
    /// Where an answer arrives or a survey goes. A closed list: channel is a label on metrics
    /// and a group key of scores, so free-form values would make both unbounded.
    Channel {
        Api,
        Sms,
        Email,
        Widget,
        Web,
        InApp,
        Voice,
        Zendesk,
        Intercom,
        Freshdesk,
        Chatwoot,
        Webhook,
    }
}

impl Channel {
    /// The kind of contact identity a survey on this channel is sent to; `None` for channels
    /// the gateway does not send on.
    pub fn address_kind(self) -> Option<&'static str> {
        match self {
            Channel::Sms => Some("phone"),
            Channel::Email => Some("email"),
            _ => None,
        }
    }

    /// Whether the gateway sends surveys on this channel.
    pub fn can_send(self) -> bool {
        self.address_kind().is_some()
    }

    /// Whether a survey can ask on this channel: the ones the gateway sends on, and the web
    /// widget, which asks visitors while they are on the site.
    pub fn can_ask(self) -> bool {
        self.can_send() || self == Channel::Widget
    }

    /// The channels surveys are sent on, in order of preference.
    pub fn sending() -> impl Iterator<Item = Channel> {
        Channel::VARIANTS.iter().copied().filter(|c| c.can_send())
    }

    /// The channels a survey can ask on.
    pub fn asking() -> impl Iterator<Item = Channel> {
        Channel::VARIANTS.iter().copied().filter(|c| c.can_ask())
    }

    /// The sending channel that reaches an identity of this kind (`phone` → SMS).
    pub fn reaching(identity_kind: &str) -> Option<Channel> {
        Channel::sending().find(|c| c.address_kind() == Some(identity_kind))
    }
}

words! {
    /// Where an invitation is in its life. Only those that reached (or will reach) the contact
    /// count as "asked".
    InvitationStatus {
        Scheduled,
        Sent,
        Answered,
        Expired,
        Suppressed,
        Failed,
        Cancelled,
    }
}

impl InvitationStatus {
    /// Whether an invitation in this state counts as the contact having been asked.
    pub fn counts_as_asked(self) -> bool {
        matches!(
            self,
            InvitationStatus::Scheduled
                | InvitationStatus::Sent
                | InvitationStatus::Answered
                | InvitationStatus::Expired
        )
    }

    /// States an answer can still arrive in.
    pub const OPEN: &'static [InvitationStatus] =
        &[InvitationStatus::Sent, InvitationStatus::Answered];
}

words! {
    /// What a fatigue decision (or a cancellation at send time) did, as the decision log keeps
    /// it.
    DecisionOutcome {
        Scheduled,
        /// Scheduled later than asked (quiet hours).
        Deferred,
        /// Shown at once in the web widget (the visitor is on the site).
        Shown,
        Suppressed,
        Cancelled,
    }
}

words! {
    /// What became of a customer's message on a messaging channel.
    ReplyOutcome {
        /// The first score for the open invitation.
        Answered,
        /// A different score: the record was updated.
        Rescored,
        /// Text after the score, within the comment window.
        Comment,
        /// No score could be read; the text is kept.
        Unreadable,
        /// Feedback with no open invitation to belong to.
        Unsolicited,
        /// The recorded score again.
        Repeat,
        /// No text at all (a picture).
        Empty,
        OptOut,
        OptIn,
        Help,
        /// A redelivery of a message already applied.
        Duplicate,
    }
}

words! {
    /// What a platform's rating did to its record.
    RatingChange {
        Created,
        /// The customer changed the rating.
        Updated,
        /// The same rating again.
        Unchanged,
    }
}

words! {
    /// Whether a contact's address can be used.
    IdentityStatus {
        Valid,
        /// The provider said the address cannot receive messages.
        Invalid,
    }
}

words! {
    /// What became of a stored webhook delivery (the raw event log).
    RawOutcome {
        /// Verified and applied.
        Accepted,
        /// Verified, but a value could not be read: kept for the operator to replay.
        Unreadable,
        /// Kept as unreadable, then applied by the operator's replay.
        Replayed,
        /// Verified, and sent by a program (an out-of-office reply): kept, never read.
        Automatic,
    }
}

/// A tenant's slug or a survey's key. Slugs appear in webhook URLs (`/hooks/{slug}/…`): keep
/// them URL-safe and readable.
pub fn check_slug(slug: &str) -> Result<(), &'static str> {
    let ok_chars = slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(2..=40).contains(&slug.len()) {
        Err("must be 2 to 40 characters long")
    } else if !ok_chars {
        Err("may hold only lowercase letters, digits and dashes")
    } else if slug.starts_with('-') || slug.ends_with('-') {
        Err("may not start or end with a dash")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_as_the_strings_stored_today() {
        for c in Channel::VARIANTS {
            assert_eq!(Channel::parse(c.as_str()), Some(*c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(InvitationStatus::Cancelled.as_str(), "cancelled");
        assert_eq!(ReplyOutcome::OptOut.as_str(), "opt_out");
        assert_eq!(Channel::InApp.as_str(), "in_app");
        assert!("whatsapp".parse::<Channel>().is_err());
        assert_eq!(
            serde_json::from_str::<InvitationStatus>("\"sent\"").unwrap(),
            InvitationStatus::Sent
        );
    }

    #[test]
    fn channels_know_the_address_they_need() {
        assert_eq!(
            Channel::sending().collect::<Vec<_>>(),
            [Channel::Sms, Channel::Email]
        );
        assert_eq!(Channel::reaching("phone"), Some(Channel::Sms));
        assert_eq!(Channel::reaching("email"), Some(Channel::Email));
        assert_eq!(Channel::reaching("external"), None);
        assert!(!Channel::Zendesk.can_send());
    }
}
