//! sea-orm entities, one per table. Relations are expressed in queries, not here: every query
//! filters by tenant first, and that is easier to see in the query than behind a relation.

pub mod api_key;
pub mod contact;
pub mod contact_identity;
pub mod dead_letter;
pub mod feedback;
pub mod invitation;
pub mod outbox;
pub mod policy_decision;
pub mod raw_event;
pub mod score_fact;
pub mod survey;
pub mod tenant;
