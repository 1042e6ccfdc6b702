//! The scoring store: NPS, CSAT and CES computed from feedback forwarded through the outbox.

mod common;

use common::{assert_problem, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    nps_worked_example,
    csat_counts_good_bad_and_five_point_answers,
    ces_mean_and_low_effort,
    grouping_and_filters,
    bad_score_queries,
    a_late_unscored_version_never_removes_a_newer_fact,
);

async fn scores(server: &TestServer, key: &str, query: &str) -> Value {
    let (status, body) = server.get(&format!("/v1/scores?{query}"), key).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

async fn nps_worked_example(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    // 4 promoters, 5 passives, 1 detractor → 40 % − 10 % = 30.
    for score in [9, 10, 9, 10, 7, 8, 7, 8, 7, 6] {
        server
            .feedback(&key, json!({"metric": "nps", "score": score}))
            .await;
    }
    // Other metrics do not count towards NPS.
    server
        .feedback(&key, json!({"metric": "csat", "score": 1}))
        .await;
    server
        .feedback(&key, json!({"metric": "text", "comment": "no score here"}))
        .await;
    server.settle().await;
    assert_eq!(
        scores(&server, &key, "metric=nps").await,
        json!({"metric": "nps", "responses": 10, "promoters": 4, "passives": 5, "detractors": 1, "score": 30.0})
    );
    server.stop().await;
}

async fn csat_counts_good_bad_and_five_point_answers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    for score in [
        json!(5),
        json!(4),
        json!(3),
        json!(1),
        json!("good"),
        json!("bad"),
        json!("good"),
        json!(2),
    ] {
        server
            .feedback(
                &key,
                json!({"metric": "csat", "score": score, "channel": "zendesk"}),
            )
            .await;
    }
    server.settle().await;
    // satisfied: 5, 4, good, good = 4 of 8.
    assert_eq!(
        scores(&server, &key, "metric=csat").await,
        json!({"metric": "csat", "responses": 8, "satisfied": 4, "score": 50.0})
    );
    server.stop().await;
}

async fn ces_mean_and_low_effort(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    for score in [7, 6, 5, 2] {
        server
            .feedback(&key, json!({"metric": "ces", "score": score}))
            .await;
    }
    server.settle().await;
    assert_eq!(
        scores(&server, &key, "metric=ces").await,
        json!({"metric": "ces", "responses": 4, "mean": 5.0, "low_effort": 3, "low_effort_percent": 75.0})
    );
    // No answers: counts are zero and scores null, not a division by zero.
    let (_, empty) = server.get("/v1/scores?metric=nps", &key).await;
    assert_eq!(empty["responses"], 0);
    assert_eq!(empty["score"], Value::Null);
    server.stop().await;
}

async fn grouping_and_filters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let answers = [
        // (score, channel, occurred_at, agent, team)
        (10, "sms", "2026-11-02T09:00:00Z", "ann", "dk"), // Monday, week of 11-02
        (9, "sms", "2026-11-08T23:30:00Z", "ann", "dk"),  // Sunday, same week
        (3, "email", "2026-11-09T00:30:00Z", "bo", "se"), // Monday, next week
        (8, "email", "2026-10-31T12:00:00Z", "bo", "dk"), // October
    ];
    for (score, channel, at, agent, team) in answers {
        server
            .feedback(
                &key,
                json!({"metric": "nps", "score": score, "channel": channel, "occurred_at": at,
                       "agent_ref": agent, "team_ref": team}),
            )
            .await;
    }
    server.settle().await;
    let keys_and_scores = |body: &Value| -> Vec<(Value, Value, Value)> {
        body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["key"].clone(), g["responses"].clone(), g["score"].clone()))
            .collect()
    };
    let by_channel = scores(&server, &key, "metric=nps&group_by=channel").await;
    assert_eq!(by_channel["metric"], "nps");
    assert_eq!(
        keys_and_scores(&by_channel),
        vec![
            (json!("email"), json!(2), json!(-50.0)),
            (json!("sms"), json!(2), json!(100.0)),
        ]
    );
    let by_day = scores(&server, &key, "metric=nps&group_by=day").await;
    assert_eq!(
        by_day["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["key"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        vec!["2026-10-31", "2026-11-02", "2026-11-08", "2026-11-09"]
    );
    let by_week = scores(&server, &key, "metric=nps&group_by=week").await;
    assert_eq!(
        keys_and_scores(&by_week),
        vec![
            (json!("2026-10-26"), json!(1), json!(0.0)),
            (json!("2026-11-02"), json!(2), json!(100.0)),
            (json!("2026-11-09"), json!(1), json!(-100.0)),
        ]
    );
    let by_month = scores(&server, &key, "metric=nps&group_by=month").await;
    assert_eq!(
        keys_and_scores(&by_month),
        vec![
            (json!("2026-10"), json!(1), json!(0.0)),
            (json!("2026-11"), json!(3), json!(33.33)),
        ]
    );
    let by_agent = scores(&server, &key, "metric=nps&group_by=agent").await;
    assert_eq!(by_agent["groups"][0]["key"], "ann");
    assert_eq!(by_agent["groups"][0]["promoters"], 2);
    assert_eq!(by_agent["groups"][1]["detractors"], 1);
    let by_team = scores(&server, &key, "metric=nps&group_by=team").await;
    assert_eq!(
        keys_and_scores(&by_team),
        vec![
            (json!("dk"), json!(3), json!(66.67)),
            (json!("se"), json!(1), json!(-100.0)),
        ]
    );
    let window = scores(
        &server,
        &key,
        "metric=nps&from=2026-11-01T00:00:00Z&to=2026-11-09T00:00:00Z",
    )
    .await;
    assert_eq!(window["responses"], 2);
    assert_eq!(window["score"], 100.0);
    let sms = scores(&server, &key, "metric=nps&channel=email").await;
    assert_eq!(sms["responses"], 2);
    server.stop().await;
}

async fn bad_score_queries(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    for query in [
        "",
        "metric=stars",
        "metric=text",
        "metric=nps&group_by=hour",
        "metric=nps&from=last-week",
        "metric=nps&from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z",
        "metric=nps&colour=blue",
    ] {
        let (status, body) = server.get(&format!("/v1/scores?{query}"), &key).await;
        assert_problem(status, &body, 400, "invalid-query");
    }
    let (status, body) = server
        .send(reqwest::Method::GET, "/v1/scores?metric=nps", None, None)
        .await;
    assert_problem(status, &body, 401, "unauthorized");
    server.stop().await;
}

/// Score facts follow the newest version of a record whatever order its events arrive in: an
/// older version without a score (the text that came before the score) delivered late leaves
/// the fact alone; a newer one without a score removes it.
async fn a_late_unscored_version_never_removes_a_newer_fact(backend: Backend) {
    use feedback_gateway::store::scores::upsert_facts;
    let server = TestServer::start(backend).await;
    let key = server.tenant("acme").await;
    let created = server
        .feedback(&key, json!({"metric": "csat", "score": 5}))
        .await;
    server.settle().await;
    let scored: channels::model::Feedback = serde_json::from_value(created).unwrap();
    let unscored = channels::model::Feedback {
        score: None,
        scale: None,
        metric: channels::model::Metric::Text,
        ..scored.clone()
    };
    let at = |minutes: i64| feedback_gateway::store::now() + chrono::Duration::minutes(minutes);
    let facts = || server.count("score_facts");
    upsert_facts(&server.db.write, &[(scored.clone(), at(10))])
        .await
        .unwrap();
    assert_eq!(facts().await, 1);
    upsert_facts(&server.db.write, &[(unscored.clone(), at(5))])
        .await
        .unwrap();
    assert_eq!(
        facts().await,
        1,
        "an older version delivered late changes nothing"
    );
    upsert_facts(&server.db.write, &[(unscored, at(20))])
        .await
        .unwrap();
    assert_eq!(
        facts().await,
        0,
        "a newer version without a score removes the fact"
    );
    server.stop().await;
}
