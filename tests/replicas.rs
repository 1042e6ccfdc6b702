//! Two gateway processes on one PostgreSQL database, as replicas behind a load balancer: they
//! start together (migrations and the demo tenant once), and share the fatigue rules.

mod common;

use std::collections::HashMap;

use common::binary::start_binary;
use common::{Backend, TestDb};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_start_together_and_schedule_one_invitation() {
    if common::postgres_url().is_none() {
        eprintln!("FEEDBACK_TEST_POSTGRES_URL is not set: skipped");
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = std::thread::scope(|s| {
        let first = s.spawn(|| start_binary(dir.path(), db.url(), &[]));
        let second = s.spawn(|| start_binary(dir.path(), db.url(), &[]));
        (first.join().unwrap(), second.join().unwrap())
    });
    let keys: Vec<String> = [&a, &b].iter().filter_map(|g| g.demo_key()).collect();
    assert_eq!(keys.len(), 1, "one demo tenant, created by one of the two");
    let key = &keys[0];
    let client = reqwest::Client::new();

    let resp = client
        .put(format!("{}/v1/surveys/support-csat", a.base))
        .bearer_auth(key)
        .json(&json!({"metric": "csat", "question": {"en": "How satisfied are you?"}, "channels": ["sms"]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let resp = client
        .post(format!("{}/v1/feedback", b.base))
        .bearer_auth(key)
        .json(&json!({"metric": "nps", "score": 9, "contact": {"phone": "+4522334455"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    let mut tasks = Vec::new();
    for i in 0..20 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let req = client
            .post(format!("{base}/v1/surveys/support-csat/send"))
            .bearer_auth(key)
            .json(&json!({"contact": {"phone": "+4522334455"}, "ticket_ref": format!("T-{i}")}));
        tasks.push(tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 202);
            resp.json::<Value>().await.unwrap()
        }));
    }
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        let inv = t.await.unwrap();
        *outcomes
            .entry(format!(
                "{}/{}",
                inv["status"].as_str().unwrap(),
                inv["reason"].as_str().unwrap_or("-")
            ))
            .or_default() += 1;
    }
    let scheduled: usize = outcomes
        .iter()
        .filter(|(k, _)| k.starts_with("scheduled"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(scheduled, 1, "{outcomes:?}");
    assert_eq!(
        outcomes.get("suppressed/rest_period"),
        Some(&19),
        "{outcomes:?}"
    );
    a.stop();
    b.stop();
    db.drop_database().await;
}

/// What one replica changes, the other sees within the cache's time to live; the replica that
/// made the change sees it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_replica_reaches_the_others_cache_within_its_time_to_live() {
    if common::postgres_url().is_none() {
        eprintln!("FEEDBACK_TEST_POSTGRES_URL is not set: skipped");
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("FEEDBACK_DATABASE__CACHE_TTL_MS", "400")];
    let a = start_binary(dir.path(), db.url(), &env);
    let b = start_binary(dir.path(), db.url(), &env);
    let key = a.demo_key().or_else(|| b.demo_key()).unwrap();
    let client = reqwest::Client::new();
    let keys = |base: &str| {
        let client = client.clone();
        let url = format!("{base}/v1/surveys");
        let key = key.clone();
        async move {
            let list: Value = client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["key"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // B reads (and caches) the tenant's surveys before A adds one.
    let before = keys(&b.base).await;
    let resp = client
        .put(format!("{}/v1/surveys/nps-after-call", a.base))
        .bearer_auth(&key)
        .json(&json!({"metric": "nps", "question": {"en": "Would you recommend us?"}, "channels": ["sms"]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let changed_at = std::time::Instant::now();
    assert!(keys(&a.base).await.contains(&"nps-after-call".to_owned()));
    assert!(!before.contains(&"nps-after-call".to_owned()));
    loop {
        if keys(&b.base).await.contains(&"nps-after-call".to_owned()) {
            break;
        }
        assert!(
            changed_at.elapsed() < std::time::Duration::from_secs(3),
            "replica B still serves the old survey list"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    a.stop();
    b.stop();
    db.drop_database().await;
}
