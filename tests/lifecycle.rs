//! The invitation lifecycle only moves forward: transitions called out of order, late or twice
//! (a delivery report after the answer, a worker whose lease ran out, an opt-out after the
//! send) change nothing. Driven against the real database on both backends.

mod common;

use channels::model::DeliveryState;
use chrono::Duration;
use common::{Backend, TestServer};
use feedback_gateway::lifecycle::{self, Claim, Sent};
use feedback_gateway::store::{invitations, tenants};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

on_both_backends!(transitions_only_move_forward);

async fn schedule(server: &TestServer, key: &str, phone: &str) -> Uuid {
    let (status, inv) = server
        .post(
            "/v1/surveys/csat/send",
            key,
            json!({"contact": {"phone": phone}}),
        )
        .await;
    assert_eq!(status.as_u16(), 202, "{inv}");
    assert_eq!(inv["status"], "scheduled", "{inv}");
    inv["id"].as_str().unwrap().parse().unwrap()
}

async fn row(server: &TestServer, key: &str, id: Uuid) -> Value {
    let (_, list) = server.get("/v1/invitations?limit=500", key).await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.to_string())
        .cloned()
        .unwrap()
}

/// A claim time past any send time and any lease the gateway's own dispatcher (which makes
/// one round at start) could hold, so the test's claim takes the row whatever ran first.
fn later() -> chrono::DateTime<chrono::Utc> {
    feedback_gateway::store::now() + Duration::hours(1)
}

fn sent(at: chrono::DateTime<chrono::Utc>) -> Sent<'static> {
    Sent {
        at,
        expires_at: at + Duration::hours(72),
        provider_ref: "SM0001",
        sender: Some("+4520000000"),
        address: "+4522334455",
        message: "Hvor tilfreds er du?",
        attempts: 1,
    }
}

/// The invitation's row as stored.
async fn model(
    db: &feedback_gateway::store::Db,
    id: Uuid,
) -> feedback_gateway::store::entities::invitation::Model {
    use sea_orm::EntityTrait;
    feedback_gateway::store::entities::invitation::Entity::find_by_id(id)
        .one(&db.write)
        .await
        .unwrap()
        .unwrap()
}

/// A new invitation, claimed by `worker` and marked sent.
async fn sent_through_a_claim(server: &TestServer, key: &str, phone: &str, worker: &str) -> Uuid {
    let id = schedule(server, key, phone).await;
    let claimed = invitations::claim_due(&server.db, worker, later(), Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    let claim = Claim {
        db: &server.db,
        worker,
        invitation: &claimed[0],
    };
    assert!(claim
        .mark_sent(&sent(feedback_gateway::store::now()))
        .await
        .unwrap());
    id
}

async fn transitions_only_move_forward(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.dispatch.poll_interval_ms = 600_000, vec![]).await;
    let key = server.tenant("acme").await;
    let (status, body) = server
        .send(
            Method::PUT,
            "/v1/surveys/csat",
            Some(&key),
            Some(json!({
                "metric": "csat", "question": {"da": "Hvor tilfreds er du?"},
                "channels": ["sms"],
                "policy": {"send_delay_minutes": 0, "quiet_hours": null, "rest_period_days": 0,
                           "max_per_window": 1000, "one_per_ticket": false}
            })),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let db = &server.db;
    let now = feedback_gateway::store::now();

    let first = schedule(&server, &key, "+4522334455").await;
    // Not answered, not sent by a worker that holds no claim.
    assert!(!lifecycle::mark_answered(&db.write, first, now)
        .await
        .unwrap());
    let first_row = model(db, first).await;
    let stranger = Claim {
        db,
        worker: "not-the-claimant",
        invitation: &first_row,
    };
    assert!(!stranger.mark_sent(&sent(now)).await.unwrap());
    assert_eq!(row(&server, &key, first).await["status"], "scheduled");

    // Claimed and sent; a second send, or a cancel, after that changes nothing.
    let claimed = invitations::claim_due(db, "w1", later(), Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [first]);
    let claim = Claim {
        db,
        worker: "w1",
        invitation: &claimed[0],
    };
    assert!(claim.mark_sent(&sent(now)).await.unwrap());
    assert!(
        !claim.mark_sent(&sent(now)).await.unwrap(),
        "the claim was released"
    );
    assert!(!claim.cancel("opt_out", "too late").await.unwrap());
    assert!(!claim.fail(2, "too late").await.unwrap());
    let contact: Uuid = row(&server, &key, first).await["contact_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let tenant = tenants::find_by_slug(db, "acme").await.unwrap().unwrap().id;
    assert_eq!(
        lifecycle::cancel_on_opt_out(&db.write, tenant, contact, "sms")
            .await
            .unwrap(),
        0,
        "an opt-out cancels only what is not sent yet"
    );
    assert_eq!(row(&server, &key, first).await["status"], "sent");

    // Answered (twice: a changed score); a late failure report keeps the answer.
    assert!(lifecycle::mark_answered(&db.write, first, now)
        .await
        .unwrap());
    assert!(lifecycle::mark_answered(&db.write, first, now)
        .await
        .unwrap());
    let first_row = model(db, first).await;
    lifecycle::record_delivery(
        &db.write,
        db.routes(),
        &first_row,
        DeliveryState::Undelivered,
        Some("30003"),
    )
    .await
    .unwrap();
    let answered = row(&server, &key, first).await;
    assert_eq!(answered["status"], "answered", "{answered}");
    assert_eq!(answered["delivery_status"], "undelivered", "{answered}");
    // Expiry closes only invitations still waiting for an answer.
    lifecycle::expire_open(db, now + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(row(&server, &key, first).await["status"], "answered");

    // A second invitation: sent, expired, and then no answer opens it again.
    let second = sent_through_a_claim(&server, &key, "+4522334466", "w2").await;
    assert_eq!(
        lifecycle::expire_open(db, now + Duration::days(30))
            .await
            .unwrap(),
        1
    );
    assert!(!lifecycle::mark_answered(&db.write, second, now)
        .await
        .unwrap());
    assert_eq!(row(&server, &key, second).await["status"], "expired");

    // A third: undelivered while only sent, it fails; its claim is gone, so nothing re-sends it.
    let third = sent_through_a_claim(&server, &key, "+4522334477", "w3").await;
    let third_row = model(db, third).await;
    lifecycle::record_delivery(
        &db.write,
        db.routes(),
        &third_row,
        DeliveryState::Failed,
        Some("failed 30005"),
    )
    .await
    .unwrap();
    let failed = row(&server, &key, third).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["reason"], "undelivered", "{failed}");
    assert_eq!(failed["last_error"], "failed 30005", "{failed}");
    assert!(!lifecycle::mark_answered(&db.write, third, now)
        .await
        .unwrap());

    // An opt-out cancels what waits to be sent, and leaves an invitation a dispatcher holds to
    // its claimant, which cancels it (a provider's STOP) or checks the opt-out again.
    let held = schedule(&server, &key, "+4522334488").await;
    let claimed = invitations::claim_due(db, "w4", later(), Duration::minutes(5), 1)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [held]);
    let waiting = schedule(&server, &key, "+4522334488").await;
    let contact: Uuid = row(&server, &key, held).await["contact_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        lifecycle::cancel_on_opt_out(&db.write, tenant, contact, "all")
            .await
            .unwrap(),
        1
    );
    assert_eq!(row(&server, &key, waiting).await["status"], "cancelled");
    assert_eq!(row(&server, &key, held).await["status"], "scheduled");
    let claim = Claim {
        db,
        worker: "w4",
        invitation: &claimed[0],
    };
    assert!(claim.cancel("opt_out", "21610").await.unwrap());
    assert_eq!(row(&server, &key, held).await["status"], "cancelled");
    server.stop().await;
}
