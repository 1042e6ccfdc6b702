//! Channel adapters and the normalized feedback schema. Pure code: no database, no HTTP server.
//! Each provider's file owns its signature check, payload parsing and outbound client.

pub mod chat;
pub mod email;
pub mod messaging;
pub mod model;
pub mod outbound;
pub mod reply;
pub mod sanitize;
pub mod scrub;
pub mod secret;
pub mod vocabulary;
pub mod widget;
