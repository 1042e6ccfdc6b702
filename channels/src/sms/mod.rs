//! SMS providers. Twilio is the first; a provider's file owns its signature check, webhook
//! parsing and REST client.

pub mod twilio;
