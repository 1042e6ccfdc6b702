//! The outbox relay: at-least-once delivery, retries with backoff, dead letters and replay,
//! leases that return a crashed worker's rows, and relays that share one queue.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{assert_problem, Backend, TestServer};
use feedback_gateway::events::Event;
use feedback_gateway::forward::relay::Relay;
use feedback_gateway::forward::{Sink, SinkError};
use feedback_gateway::store::outbox;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::json;

/// A sink that records what it is given and fails on demand.
#[derive(Default)]
struct Recording {
    received: Mutex<Vec<Event>>,
    fail_next: AtomicUsize,
    permanent: std::sync::atomic::AtomicBool,
}

impl Recording {
    fn events(&self) -> Vec<Event> {
        self.received.lock().unwrap().clone()
    }
}

#[async_trait]
impl Sink for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn deliver(&self, event: &Event) -> Result<(), SinkError> {
        if self.permanent.load(Ordering::SeqCst) {
            return Err(SinkError::permanent("refused for good"));
        }
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(SinkError::retry("downstream answered 503"));
        }
        self.received.lock().unwrap().push(event.clone());
        Ok(())
    }
}

on_both_backends!(
    retries_until_delivered_with_the_same_event_id,
    exhausted_rows_become_dead_letters_and_replay,
    a_crashed_workers_rows_return_after_the_lease,
    two_relays_share_the_queue,
    the_scoring_store_retries_a_failed_round_and_then_delivers,
);

async fn wait_for(mut done: impl FnMut() -> bool, server: &TestServer) {
    for _ in 0..200 {
        server.drain().await;
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

async fn retries_until_delivered_with_the_same_event_id(backend: Backend) {
    let sink = Arc::new(Recording::default());
    sink.fail_next.store(3, Ordering::SeqCst);
    let server = TestServer::start_with(backend, |_| {}, vec![sink.clone()]).await;
    let key = server.tenant("acme").await;
    let f = server
        .feedback(&key, json!({"metric": "nps", "score": 9}))
        .await;
    wait_for(|| !sink.events().is_empty(), &server).await;
    let events = sink.events();
    assert_eq!(events.len(), 1, "delivered once after three failures");
    assert_eq!(events[0].event_type, "feedback.created");
    assert_eq!(
        events[0].aggregate_id.to_string(),
        f["id"].as_str().unwrap()
    );
    assert_eq!(events[0].data["score"], 9);
    server.settle().await;
    assert_eq!(server.count("dead_letters").await, 0);
    // The scoring sink was not held back by the failing one.
    let (_, scores) = server.get("/v1/scores?metric=nps", &key).await;
    assert_eq!(scores["promoters"], 1);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("outbox_failed_total{sink=\"recording\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("outbox_delivered_total{sink=\"recording\"}"));
    server.stop().await;
}

async fn exhausted_rows_become_dead_letters_and_replay(backend: Backend) {
    let sink = Arc::new(Recording::default());
    sink.fail_next.store(usize::MAX, Ordering::SeqCst);
    let server =
        TestServer::start_with(backend, |c| c.outbox.max_attempts = 3, vec![sink.clone()]).await;
    let key = server.tenant("acme").await;
    let other = server.tenant("other").await;
    let f = server
        .feedback(&key, json!({"metric": "csat", "score": 4}))
        .await;
    let mut letters = json!([]);
    for _ in 0..200 {
        server.drain().await;
        letters = server.get("/v1/dead-letters", &key).await.1["items"].clone();
        if !letters.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let letter = &letters[0];
    assert_eq!(letter["sink"], "recording");
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["last_error"], "downstream answered 503");
    assert_eq!(letter["aggregate_id"], f["id"]);
    server.settle().await;
    let id = letter["id"].as_str().unwrap().to_owned();

    // Another tenant neither sees nor replays it.
    assert_eq!(
        server.get("/v1/dead-letters", &other).await.1["items"],
        json!([])
    );
    let replay = format!("/v1/dead-letters/{id}/replay");
    let (status, body) = server.send(Method::POST, &replay, Some(&other), None).await;
    assert_problem(status, &body, 404, "not-found");

    sink.fail_next.store(0, Ordering::SeqCst);
    let (status, body) = server.send(Method::POST, &replay, Some(&key), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_for(|| sink.events().len() == 1, &server).await;
    assert_eq!(
        sink.events()[0].id.to_string(),
        letter["event_id"].as_str().unwrap()
    );
    let (status, body) = server.send(Method::POST, &replay, Some(&key), None).await;
    assert_problem(status, &body, 404, "not-found");
    assert!(!server.get("/v1/dead-letters", &key).await.1["items"][0]["replayed_at"].is_null());

    // A permanent refusal is dead-lettered at the first attempt.
    sink.permanent.store(true, Ordering::SeqCst);
    server
        .feedback(&key, json!({"metric": "csat", "score": 5}))
        .await;
    for _ in 0..200 {
        server.drain().await;
        if server.count("dead_letters").await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, letters) = server.get("/v1/dead-letters", &key).await;
    assert_eq!(letters["items"][0]["attempts"], 1);
    assert_eq!(letters["items"][0]["last_error"], "refused for good");
    server.stop().await;
}

async fn a_crashed_workers_rows_return_after_the_lease(backend: Backend) {
    let sink = Arc::new(Recording::default());
    let server = TestServer::start_with(
        backend,
        // Keep the background relay out of the way; the test drives rounds itself.
        |c| c.outbox.poll_interval_ms = 60_000,
        vec![sink.clone()],
    )
    .await;
    server.tenant("acme").await;
    let tenant = feedback_gateway::store::tenants::find_by_slug(&server.db, "acme")
        .await
        .unwrap()
        .unwrap();
    // Queued straight into the outbox, so nothing wakes the background relay. Its first round
    // may still come after the row is queued (a busy machine starts it late) and deliver the
    // row before the crashing worker claims it; then the row is queued again, once that round
    // is over and the relay sleeps for its poll interval.
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let event = Event {
            id: uuid::Uuid::now_v7(),
            event_type: "feedback.created".into(),
            tenant_id: tenant.id,
            aggregate_id: uuid::Uuid::now_v7(),
            created_at: feedback_gateway::store::now(),
            data: json!({}),
        };
        feedback_gateway::store::batch::enqueue(
            &server.db.write,
            &[event],
            &[feedback_gateway::store::batch::Route {
                sink: "recording",
                types: None,
                tenants: None,
            }],
        )
        .await
        .unwrap();
        claimed = outbox::claim(
            &server.db,
            "crashed-worker",
            chrono::Utc::now(),
            chrono::Duration::milliseconds(800),
            100,
            &[],
        )
        .await
        .unwrap();
        if !claimed.is_empty() {
            break;
        }
        for _ in 0..200 {
            if server.count("outbox").await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sink.received.lock().unwrap().clear();
    }
    assert_eq!(claimed.len(), 1);
    server.drain().await;
    assert!(
        sink.events().is_empty(),
        "a leased row is not delivered twice"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    server.drain().await;
    assert_eq!(
        sink.events().len(),
        1,
        "the row returned to the queue when the lease ran out"
    );
    // The crashed worker coming back cannot delete what it no longer holds.
    outbox::complete(&server.db, "crashed-worker", &[claimed[0].id])
        .await
        .unwrap();
    server.stop().await;
}

async fn two_relays_share_the_queue(backend: Backend) {
    let counts = Arc::new(Counting::default());
    let server = TestServer::start_with(
        backend,
        |c| c.outbox.poll_interval_ms = 60_000,
        vec![counts.clone()],
    )
    .await;
    let key = server.tenant("acme").await;
    for i in 0..60 {
        server
            .feedback(&key, json!({"metric": "nps", "score": 7 + i % 4}))
            .await;
    }
    let cfg = {
        let mut c = common::test_config(server.test_db.url()).outbox;
        c.batch_size = 5;
        c
    };
    let relays: Vec<Relay> = (0..2)
        .map(|_| {
            Relay::new(
                server.db.clone(),
                vec![counts.clone() as Arc<dyn Sink>],
                cfg.clone(),
                Arc::new(tokio::sync::Notify::new()),
            )
        })
        .collect();
    let mut tasks = Vec::new();
    for r in relays {
        tasks.push(tokio::spawn(async move { r.drain().await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // The server's own relay (woken by ingest) may still be finishing a batch it claimed.
    server.settle().await;
    let seen = counts.by_event.lock().unwrap().clone();
    assert_eq!(seen.len(), 60, "every event delivered");
    assert!(
        seen.values().all(|&n| n == 1),
        "no event delivered twice: {seen:?}"
    );
    server.stop().await;
}

#[derive(Default)]
struct Counting {
    by_event: Mutex<HashMap<uuid::Uuid, usize>>,
}

#[async_trait]
impl Sink for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn deliver(&self, event: &Event) -> Result<(), SinkError> {
        // A little latency so the two relays' rounds overlap.
        tokio::time::sleep(Duration::from_millis(1)).await;
        *self.by_event.lock().unwrap().entry(event.id).or_default() += 1;
        Ok(())
    }
}

/// The scoring store writes in the relay's own transaction: a round whose writes fail is rolled
/// back whole, its rows are rescheduled with the error (no fact half-written, nothing lost), and
/// a later round delivers them.
async fn the_scoring_store_retries_a_failed_round_and_then_delivers(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        |c| {
            c.outbox.poll_interval_ms = 60_000;
            // Failed rows wait a little (a relay's drain does not spin on them) and are never
            // given up on here.
            c.outbox.backoff_base_ms = 100;
            c.outbox.backoff_max_ms = 100;
            c.outbox.max_attempts = 1_000;
        },
        vec![],
    )
    .await;
    let key = server.tenant("acme").await;
    server.settle().await;
    // A trigger that refuses every fact (a renamed table would not do: PostgreSQL's prepared
    // statements follow the table under its new name).
    let (refuse, allow) = match backend {
        Backend::Sqlite => (
            vec![
                "CREATE TRIGGER refuse_facts BEFORE INSERT ON score_facts \
                  BEGIN SELECT RAISE(ABORT, 'refused'); END",
            ],
            "DROP TRIGGER refuse_facts",
        ),
        Backend::Postgres => (
            vec![
                "CREATE FUNCTION refuse_facts() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
                "CREATE TRIGGER refuse_facts BEFORE INSERT ON score_facts \
                 FOR EACH ROW EXECUTE FUNCTION refuse_facts()",
            ],
            "DROP TRIGGER refuse_facts ON score_facts",
        ),
    };
    for sql in refuse {
        server.db.write.execute_unprepared(sql).await.unwrap();
    }
    for score in [10, 9, 2] {
        server
            .feedback(&key, json!({"metric": "nps", "score": score}))
            .await;
    }
    // Rounds until every row has failed once (the background relay may have taken some).
    for _ in 0..200 {
        let _ = server.relay.run_once().await;
        let failed = server
            .count_where("SELECT COUNT(*) AS n FROM outbox WHERE sink = 'scoring' AND attempts > 0")
            .await;
        if failed == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        server
            .count_where(
                "SELECT COUNT(*) AS n FROM outbox WHERE sink = 'scoring' AND attempts > 0 \
                 AND last_error IS NOT NULL AND locked_by IS NULL"
            )
            .await,
        3,
        "every row of the failed round is rescheduled with its error, and none is leased"
    );
    assert_eq!(server.count("dead_letters").await, 0);
    server.db.write.execute_unprepared(allow).await.unwrap();
    server.settle().await;
    assert_eq!(server.count("outbox").await, 0, "delivered rows are gone");
    let (_, scores) = server.get("/v1/scores?metric=nps", &key).await;
    assert_eq!(scores["responses"], 3, "{scores}");
    assert_eq!(scores["promoters"], 2, "{scores}");
    assert_eq!(scores["detractors"], 1, "{scores}");
    server.stop().await;
}
