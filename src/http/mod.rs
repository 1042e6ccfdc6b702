//! The HTTP edge: router, shared state, and the cross-cutting layers (request id, tracing,
//! metrics, body limit, timeout, problem+json for every error).

pub mod admin;
pub mod alerts;
pub mod auth;
pub mod channels;
pub mod contacts;
pub mod dead_letters;
pub mod feedback;
pub mod health;
pub mod hooks;
pub mod input;
pub mod json;
pub mod limits;
pub mod links;
pub mod problem;
pub mod raw_events;
pub mod scores;
pub mod serve;
pub mod sinks;
pub mod sites;
pub mod surveys;
pub mod widget;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DbErr;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::ingest::Ingest;
use crate::store::Db;
use problem::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub ingest: Ingest,
    pub metrics: PrometheusHandle,
    pub scheduler: crate::policy::schedule::Triggers,
    pub limits: Arc<limits::InboundLimits>,
    /// For provider APIs a webhook needs (Zendesk's Users API).
    /// The guarded client every provider call goes through.
    pub http: ::channels::outbound::Outbound,
    /// The closed loop's time (a test's clock in tests).
    pub clock: Arc<dyn crate::alerts::Clock>,
    /// Identified widget visitors who may not be shown the survey now.
    pub widget_memory: widget::DecisionMemory,
}

impl AppState {
    /// A database error as the client sees it: 503 with Retry-After when the database cannot
    /// be reached, else a plain 500.
    pub fn db_error(&self, err: DbErr) -> ApiError {
        ApiError::from_db(err, self.config.http.retry_after_seconds)
    }

    /// An ingest failure as the client sees it: 422 naming the field, 409 for a reused
    /// idempotency key, 503 with Retry-After when the database cannot be reached, else 500.
    pub fn ingest_error(&self, err: crate::ingest::IngestError) -> ApiError {
        use crate::ingest::IngestError;
        match err {
            IngestError::Invalid(e) => e.into(),
            IngestError::Conflict(detail) => ApiError::Conflict {
                kind: "idempotency-key-reused",
                detail,
            },
            IngestError::Storage {
                unavailable: true,
                message,
            } => {
                tracing::warn!(error = %message, "not stored: database unavailable");
                ApiError::Unavailable {
                    retry_after_secs: self.config.http.retry_after_seconds,
                }
            }
            IngestError::Storage { message, .. } => {
                tracing::error!(error = %message, "ingest failed");
                ApiError::Internal
            }
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let http = &state.config.http;
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(MatchedPath::as_str)
                        .unwrap_or("");
                    // The path may carry ids but never personal data; the query string is left
                    // out because filters can hold a contact's address.
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = req.uri().path(),
                        route,
                        request_id,
                        tenant = tracing::field::Empty,
                    )
                })
                // One access-log line per request: status and latency, in the span above.
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::map_response(
            problem::problem_for_framework_errors,
        ))
        .layer(middleware::from_fn(record_metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(http.request_timeout_ms),
        ))
        // Enforced by the body extractors, so an oversize body is a 413 problem naming the limit.
        .layer(DefaultBodyLimit::max(http.body_limit_bytes));

    Router::new()
        .merge(health::router())
        .merge(admin::router().route_layer(middleware::from_fn_with_state(
            state.clone(),
            limits::per_client_ip,
        )))
        .merge(feedback::router())
        .merge(scores::router())
        .merge(dead_letters::router())
        .merge(sinks::router())
        .merge(alerts::router())
        .merge(raw_events::router())
        .merge(surveys::router())
        .merge(contacts::router())
        .merge(channels::router())
        .merge(sites::router())
        .merge(widget::router(&state))
        .merge(links::router().merge(alerts::link_router()).route_layer(
            middleware::from_fn_with_state(state.clone(), limits::per_client_ip),
        ))
        .merge(
            hooks::router(&state.config).route_layer(middleware::from_fn_with_state(
                state.clone(),
                limits::per_client_ip_on_hooks,
            )),
        )
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .layer(layers)
        .with_state(state)
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
