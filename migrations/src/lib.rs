//! Schema migrations of feedback-gateway, written with sea-query's builder so one definition
//! serves SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_foundation;
mod m20261124_000002_surveys;
mod m20261124_000003_sms;
mod m20261125_000004_platforms;
mod m20261125_000005_replay_keys;
mod m20261125_000006_hot_query_indexes;
mod m20261206_000007_link_keys;
mod m20261206_000008_webhook_endpoints;
mod m20261206_000009_alerts;
mod m20261207_000010_sites;
mod m20261207_000011_site_secret_rotation;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_foundation::Migration),
            Box::new(m20261124_000002_surveys::Migration),
            Box::new(m20261124_000003_sms::Migration),
            Box::new(m20261125_000004_platforms::Migration),
            Box::new(m20261125_000005_replay_keys::Migration),
            Box::new(m20261125_000006_hot_query_indexes::Migration),
            Box::new(m20261206_000007_link_keys::Migration),
            Box::new(m20261206_000008_webhook_endpoints::Migration),
            Box::new(m20261206_000009_alerts::Migration),
            Box::new(m20261207_000010_sites::Migration),
            Box::new(m20261207_000011_site_secret_rotation::Migration),
        ]
    }
}
