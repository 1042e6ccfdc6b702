//! Inbound rate limits (governor): per tenant API key on the tenant API, and per client IP on
//! public endpoints (admin, and the webhook and widget routes as they are added). Over the limit
//! a request is answered 429 problem+json with Retry-After; nothing is stored.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use uuid::Uuid;

use super::problem::ApiError;
use super::AppState;
use crate::config::{RateLimitConfig, WidgetConfig};

pub struct InboundLimits {
    tenants: DefaultKeyedRateLimiter<Uuid>,
    ips: DefaultKeyedRateLimiter<IpAddr>,
    hook_ips: DefaultKeyedRateLimiter<IpAddr>,
    key_lookups: DefaultKeyedRateLimiter<IpAddr>,
    widget_ips: DefaultKeyedRateLimiter<IpAddr>,
    /// By site key, counted only for sites that exist.
    widget_sites: DefaultKeyedRateLimiter<String>,
    trusted_proxies: Vec<IpNet>,
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(rate))
}

fn too_many(wait: Duration) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

impl InboundLimits {
    pub fn new(cfg: &RateLimitConfig, widget: &WidgetConfig) -> Self {
        InboundLimits {
            widget_ips: RateLimiter::keyed(quota(widget.ip_per_second, widget.ip_burst)),
            widget_sites: RateLimiter::keyed(quota(widget.site_per_second, widget.site_burst)),
            tenants: RateLimiter::keyed(quota(cfg.tenant_per_second, cfg.tenant_burst)),
            ips: RateLimiter::keyed(quota(cfg.ip_per_second, cfg.ip_burst)),
            hook_ips: RateLimiter::keyed(quota(cfg.hook_ip_per_second, cfg.hook_ip_burst)),
            key_lookups: RateLimiter::keyed(quota(
                cfg.key_lookup_ip_per_second,
                cfg.key_lookup_ip_burst,
            )),
            trusted_proxies: cfg.trusted_proxies.clone(),
        }
    }

    pub fn check_tenant(&self, tenant_id: Uuid) -> Result<(), ApiError> {
        self.tenants
            .check_key(&tenant_id)
            .map_err(|not_until| too_many(not_until.wait_time_from(DefaultClock::default().now())))
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        Self::check(&self.ips, ip)
    }

    pub fn check_hook_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        Self::check(&self.hook_ips, ip)
    }

    /// A widget request from this client address.
    pub fn check_widget_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        Self::check(&self.widget_ips, ip)
    }

    /// A widget request to this (existing) site, from any visitor.
    pub fn check_widget_site(&self, site_key: &str) -> Result<(), ApiError> {
        self.widget_sites
            .check_key(&site_key.to_owned())
            .map_err(|not_until| too_many(not_until.wait_time_from(DefaultClock::default().now())))
    }

    /// Before an API key unknown to this process is looked up in the database.
    pub fn check_key_lookup(&self, ip: IpAddr) -> Result<(), ApiError> {
        Self::check(&self.key_lookups, ip)
    }

    fn check(limiter: &DefaultKeyedRateLimiter<IpAddr>, ip: IpAddr) -> Result<(), ApiError> {
        limiter
            .check_key(&ip)
            .map_err(|not_until| too_many(not_until.wait_time_from(DefaultClock::default().now())))
    }

    /// Forgets keys that are back at a full bucket, so memory follows active clients only.
    pub fn forget_idle(&self) {
        self.tenants.retain_recent();
        self.ips.retain_recent();
        self.hook_ips.retain_recent();
        self.key_lookups.retain_recent();
        self.widget_ips.retain_recent();
        self.widget_sites.retain_recent();
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// right-most address in X-Forwarded-For that is not itself a trusted proxy. (Addresses to
    /// the left of that were written by the client and prove nothing.)
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    }
}

/// Which quota a middleware checks a client's address against.
type AddressQuota = fn(&InboundLimits, IpAddr) -> Result<(), ApiError>;

async fn limit_address(
    state: &AppState,
    peer: SocketAddr,
    req: Request,
    next: Next,
    check: AddressQuota,
) -> Response {
    let ip = state.limits.client_ip(peer.ip(), req.headers());
    match check(&state.limits, ip) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Middleware for public routes: limits each client IP.
pub async fn per_client_ip(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    limit_address(&state, peer, req, next, InboundLimits::check_ip).await
}

/// Middleware for the widget's public endpoints: limits each client IP with the widget quota.
pub async fn per_client_ip_on_widget(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    limit_address(&state, peer, req, next, InboundLimits::check_widget_ip).await
}

/// Middleware for provider webhooks: limits each client IP with the (larger) hook quota, as a
/// provider sends many tenants' traffic from few addresses.
pub async fn per_client_ip_on_hooks(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    limit_address(&state, peer, req, next, InboundLimits::check_hook_ip).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(trusted: &[&str]) -> InboundLimits {
        let widget = WidgetConfig {
            body_limit_bytes: 4096,
            min_answer_ms: 0,
            impression_max_age_hours: 1,
            ip_per_second: 1,
            ip_burst: 1,
            site_per_second: 1,
            site_burst: 1,
            decision_memory_seconds: 1,
        };
        InboundLimits::new(
            &RateLimitConfig {
                tenant_per_second: 1,
                tenant_burst: 2,
                ip_per_second: 1,
                ip_burst: 1,
                hook_ip_per_second: 1,
                hook_ip_burst: 1,
                key_lookup_ip_per_second: 1,
                key_lookup_ip_burst: 1,
                trusted_proxies: trusted.iter().map(|s| s.parse().unwrap()).collect(),
            },
            &widget,
        )
    }

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let l = limits(&["10.0.0.0/24"]);
        assert_eq!(
            l.client_ip(peer, &xff("203.0.113.9")),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // A client cannot pick its address by prepending one.
        assert_eq!(
            l.client_ip(peer, &xff("1.2.3.4, 203.0.113.9, 10.0.0.7")),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(l.client_ip(peer, &HeaderMap::new()), peer);
        let untrusted = limits(&[]);
        assert_eq!(untrusted.client_ip(peer, &xff("203.0.113.9")), peer);
    }

    #[test]
    fn burst_then_429_with_retry_after() {
        let l = limits(&[]);
        let t = Uuid::from_u128(1);
        assert!(l.check_tenant(t).is_ok());
        assert!(l.check_tenant(t).is_ok());
        match l.check_tenant(t) {
            Err(ApiError::TooManyRequests { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("{other:?}"),
        }
        assert!(
            l.check_tenant(Uuid::from_u128(2)).is_ok(),
            "keys are separate"
        );
    }
}
