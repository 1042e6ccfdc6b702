//! Hot queries read a bounded number of rows through an index, whatever the size of the data:
//! each query's plan is asked of the database (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on
//! PostgreSQL) after a tenant's tables are filled with thousands of rows, and a full scan of the
//! table fails the test.

mod common;

use chrono::{Duration, Utc};
use common::{Backend, TestServer};
use feedback_gateway::store::batch::insert_sql;
use feedback_gateway::store::{alerts, contacts, feedback, invitations, placeholders, raw_events};
use sea_orm::{ConnectionTrait, DbBackend, QuerySelect, QueryTrait, Statement, Value};
use uuid::Uuid;

on_both_backends!(hot_queries_use_indexes_on_full_tables);

const CONTACTS: usize = 2_000;
const INVITATIONS_PER_CONTACT: usize = 5;

async fn insert(server: &TestServer, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) {
    let backend = server.db.backend();
    for chunk in rows.chunks(200) {
        let sql = insert_sql(table, columns, chunk.len(), "");
        let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
        server
            .db
            .write
            .execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(backend, &sql),
                values,
            ))
            .await
            .unwrap();
    }
}

/// The plan's text, one line per step.
async fn plan(server: &TestServer, statement: Statement) -> String {
    let backend = server.db.backend();
    let prefix = match backend {
        DbBackend::Postgres => "EXPLAIN ",
        _ => "EXPLAIN QUERY PLAN ",
    };
    let explained = Statement::from_sql_and_values(
        backend,
        format!("{prefix}{}", statement.sql),
        statement.values.map(|v| v.0).unwrap_or_default(),
    );
    let rows = server.db.read.query_all_raw(explained).await.unwrap();
    rows.iter()
        .map(|r| match backend {
            DbBackend::Postgres => r.try_get::<String>("", "QUERY PLAN").unwrap(),
            _ => r.try_get::<String>("", "detail").unwrap(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// No full scan of `table`, and every index the query needs is used: an index on the tenant
/// alone would read all of the tenant's rows while looking like a search.
fn assert_bounded(plan: &str, table: &str, indexes: &[&str]) {
    assert_no_full_scan(plan, table);
    for index in indexes {
        assert!(plan.contains(index), "{index} is not used:\n{plan}");
    }
}

fn assert_no_full_scan(plan: &str, table: &str) {
    let full_scan = [
        format!("SCAN {table}\n"),
        format!("SCAN TABLE {table}\n"),
        format!("Seq Scan on {table}"),
    ];
    let text = format!("{plan}\n");
    assert!(
        !full_scan.iter().any(|s| text.contains(s.as_str())),
        "{table} is read in full:\n{plan}"
    );
    assert!(
        text.contains("INDEX") || text.contains("Index"),
        "no index in the plan:\n{plan}"
    );
}

async fn hot_queries_use_indexes_on_full_tables(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.tenant("acme").await;
    let tenant: Uuid = {
        let row = server
            .db
            .read
            .query_one_raw(Statement::from_string(
                server.db.backend(),
                "SELECT id FROM tenants WHERE slug = 'acme'",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "id").unwrap()
    };
    let now = Utc::now();
    let contacts: Vec<Uuid> = (0..CONTACTS).map(|_| Uuid::now_v7()).collect();
    insert(
        &server,
        "contacts",
        &["id", "tenant_id", "opt_outs", "created_at", "updated_at"],
        contacts
            .iter()
            .map(|c| {
                vec![
                    (*c).into(),
                    tenant.into(),
                    serde_json::json!([]).into(),
                    now.into(),
                    now.into(),
                ]
            })
            .collect(),
    )
    .await;
    insert(
        &server,
        "contact_identities",
        &[
            "id",
            "tenant_id",
            "contact_id",
            "kind",
            "value",
            "status",
            "created_at",
        ],
        contacts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    Uuid::now_v7().into(),
                    tenant.into(),
                    (*c).into(),
                    "phone".into(),
                    format!("+4560{i:06}").into(),
                    "valid".into(),
                    now.into(),
                ]
            })
            .collect(),
    )
    .await;
    let mut invitation_rows = Vec::new();
    let mut feedback_rows = Vec::new();
    let mut raw_rows = Vec::new();
    for (i, contact) in contacts.iter().enumerate() {
        for j in 0..INVITATIONS_PER_CONTACT {
            let id = Uuid::now_v7();
            let at = now - Duration::days((i * INVITATIONS_PER_CONTACT + j) as i64 % 400);
            invitation_rows.push(vec![
                id.into(),
                tenant.into(),
                "csat".into(),
                (*contact).into(),
                "answered".into(),
                "csat".into(),
                format!("T-{i}-{j}").into(),
                0i32.into(),
                at.into(),
                at.into(),
            ]);
            let n = i * INVITATIONS_PER_CONTACT + j;
            raw_rows.push(vec![
                Uuid::now_v7().into(),
                tenant.into(),
                "zendesk".into(),
                format!("inv-{n}").into(),
                format!("{n:064x}").into(),
                "zendesk.trigger".into(),
                format!("{n:064x}").into(),
                "{}".into(),
                "accepted".into(),
                at.into(),
            ]);
            feedback_rows.push(vec![
                Uuid::now_v7().into(),
                tenant.into(),
                "sms".into(),
                "twilio".into(),
                "csat".into(),
                id.into(),
                at.into(),
                at.into(),
                at.into(),
                serde_json::json!({}).into(),
            ]);
        }
    }
    insert(
        &server,
        "invitations",
        &[
            "id",
            "tenant_id",
            "survey_key",
            "contact_id",
            "status",
            "metric",
            "ticket_ref",
            "attempts",
            "created_at",
            "updated_at",
        ],
        invitation_rows,
    )
    .await;
    insert(
        &server,
        "feedback",
        &[
            "id",
            "tenant_id",
            "channel",
            "provider",
            "metric",
            "invitation_id",
            "occurred_at",
            "received_at",
            "updated_at",
            "metadata",
        ],
        feedback_rows,
    )
    .await;
    insert(
        &server,
        "raw_events",
        &[
            "id",
            "tenant_id",
            "provider",
            "provider_ref",
            "signed_sha256",
            "kind",
            "body_sha256",
            "payload",
            "outcome",
            "received_at",
        ],
        raw_rows,
    )
    .await;
    assert_eq!(
        server.count("feedback").await as usize,
        CONTACTS * INVITATIONS_PER_CONTACT
    );
    // An alert for a fifth of the answers, opened over the last few hours, none due yet; half
    // of them escalated already (earlier ones would have been swept). A busier tenant has
    // five times as many, newer ones: a page of this tenant's must not read through theirs.
    server.tenant("busier").await;
    let busier = server.tenant_id("busier").await;
    let alert_rows: Vec<Vec<Value>> = (0..CONTACTS * 6)
        .map(|i| {
            let (tenant, i) = if i < CONTACTS {
                (tenant, i)
            } else {
                (busier, i % CONTACTS)
            };
            let at = now - Duration::seconds(10 * i as i64);
            let escalate_at: Option<chrono::DateTime<Utc>> =
                (i % 2 == 0).then_some(at + Duration::hours(24));
            vec![
                Uuid::now_v7().into(),
                tenant.into(),
                Uuid::now_v7().into(),
                "default".into(),
                "open".into(),
                "urgent".into(),
                contacts[i].into(),
                "csat".into(),
                at.into(),
                at.into(),
                (at + Duration::hours(24)).into(),
                escalate_at.into(),
                at.into(),
            ]
        })
        .collect();
    insert(
        &server,
        "alerts",
        &[
            "id",
            "tenant_id",
            "feedback_id",
            "rule_key",
            "status",
            "severity",
            "contact_id",
            "metric",
            "answered_at",
            "opened_at",
            "due_at",
            "escalate_at",
            "updated_at",
        ],
        alert_rows,
    )
    .await;

    // Asked twice: as a database that was never analyzed plans (SQLite keeps no statistics
    // unless told to), and after ANALYZE.
    for analyzed in [false, true] {
        if analyzed {
            server.db.write.execute_unprepared("ANALYZE").await.unwrap();
        }
        let backend = server.db.backend();
        // An SMS reply's record: the first feedback row of its invitation.
        let first = feedback::first_for_invitation(tenant, Uuid::now_v7())
            .limit(1)
            .build(backend);
        assert_bounded(
            &plan(&server, first).await,
            "feedback",
            &["ix_feedback_invitation"],
        );

        // A group of triggers' history: the contacts' invitations, and the surveys' for the
        // tickets; and the contacts with their identities.
        let wanted = invitations::HistoryWanted {
            contacts: contacts[..37]
                .iter()
                .map(|c| (tenant, *c, now - Duration::days(181)))
                .collect(),
            tickets: (0..5)
                .map(|i| (tenant, "csat".to_owned(), format!("T-{i}-1")))
                .collect(),
        };
        let history = invitations::history_statement(backend, &wanted);
        assert_bounded(
            &plan(&server, history).await,
            "invitations",
            &["ix_invitations_contact", "ix_invitations_survey_ticket"],
        );
        // With a few ids, for the reason given at the answered invitations below.
        let [by_id, identities] = contacts::get_many_statements(backend, &contacts[..3]);
        assert_bounded(
            &plan(&server, by_id).await,
            "contacts",
            &[match backend {
                DbBackend::Postgres => "contacts_pkey",
                _ => "sqlite_autoindex_contacts",
            }],
        );
        assert_bounded(
            &plan(&server, identities).await,
            "contact_identities",
            &["ix_contact_identities_contact"],
        );

        // A group of SMS replies: the senders' open invitations, and those invitations'
        // records, each in one statement.
        let senders: Vec<(Uuid, Uuid)> = contacts[..37].iter().map(|c| (tenant, *c)).collect();
        let open = invitations::open_of_contacts_statement(backend, &senders, now);
        assert_bounded(
            &plan(&server, open).await,
            "invitations",
            &["ix_invitations_contact"],
        );
        let phones: Vec<(Uuid, &'static str, String)> = (0..37)
            .map(|i| (tenant, "phone", format!("+4560{:06}", i * 13)))
            .collect();
        let owners = contacts::owners_statement(backend, &phones);
        assert_bounded(
            &plan(&server, owners).await,
            "contact_identities",
            &["ux_contact_identities_value"],
        );
        let answered: Vec<(Uuid, Uuid)> = (0..37).map(|_| (tenant, Uuid::now_v7())).collect();
        // Marking the group's invitations answered, by id. With a few ids: PostgreSQL rightly
        // reads a table of this test's size whole rather than probe its index 64 times, and
        // probes once the table is larger (as in the scale benchmark).
        let answers = feedback_gateway::lifecycle::answered_statement(
            backend,
            &answered[..3].iter().map(|(_, id)| *id).collect::<Vec<_>>(),
            now,
        );
        assert_bounded(
            &plan(&server, answers).await,
            "invitations",
            &[match backend {
                DbBackend::Postgres => "invitations_pkey",
                _ => "sqlite_autoindex_invitations",
            }],
        );
        let records = feedback::first_for_invitations_statement(backend, &answered);
        assert_bounded(
            &plan(&server, records).await,
            "feedback",
            &["ix_feedback_invitation"],
        );

        // A changed answer's alert; the overdue sweep; the closed loop's statistics, each
        // alert with its contact's next answer. PostgreSQL, before it has statistics of the
        // new table, takes it for a few pages and reads it whole; checked there after ANALYZE.
        if backend == DbBackend::Sqlite || analyzed {
            let of_answers = alerts::of_answers_statement(
                backend,
                &(0..3).map(|_| Uuid::now_v7()).collect::<Vec<_>>(),
            );
            assert_bounded(
                &plan(&server, of_answers).await,
                "alerts",
                &["ux_alerts_feedback"],
            );
            let page = alerts::list_statement(
                backend,
                tenant,
                &alerts::ListFilter {
                    limit: 50,
                    ..Default::default()
                },
            );
            assert_bounded(
                &plan(&server, page).await,
                "alerts",
                &["ix_alerts_tenant_id"],
            );
            let overdue = alerts::take_overdue_statement(backend, now, 100);
            assert_bounded(
                &plan(&server, overdue).await,
                "alerts",
                &["ix_alerts_escalate_at"],
            );
            let measured = alerts::opened_between_statement(
                backend,
                tenant,
                now - Duration::minutes(10),
                now,
                1000,
            );
            let measured = plan(&server, measured).await;
            assert_bounded(&measured, "alerts", &["ix_alerts_tenant_opened"]);
            assert_bounded(&measured, "feedback", &["ix_feedback_contact_metric"]);
        }

        // A webhook's redelivery and replay check: the delivery id or the signed content.
        // PostgreSQL without statistics rates the two unique indexes alike and may read the
        // signed-content branch through the other one's (tenant, provider) prefix; with the
        // statistics autovacuum gathers it uses each branch's own key. Checked there after
        // ANALYZE only.
        if backend == DbBackend::Postgres && !analyzed {
            continue;
        }
        let seen = raw_events::delivered_before_statement(
            backend,
            tenant,
            "zendesk",
            Some("inv-42"),
            Some(&format!("{:064x}", 43)),
        )
        .unwrap();
        assert_bounded(
            &plan(&server, seen).await,
            "raw_events",
            &["ux_raw_events_provider_ref", "ux_raw_events_signed_content"],
        );
    }
    server.stop().await;
}
