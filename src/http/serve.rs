//! The accept loop: every connection gets a deadline for its request headers, and one client
//! address may hold only so many connections at once.
//!
//! Why not `axum::serve`: it configures no timer, so hyper's header-read timeout never fires and
//! a client that opens connections and never finishes its headers holds them (and a task each)
//! forever; and it has no place to refuse a connection by its address. This loop is the same
//! hyper-util server with those two additions and the same graceful shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// What one connection may take.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Time from the start of a request (or of an idle keep-alive connection's wait for the
    /// next one) until its headers are complete.
    pub header_read_timeout: Duration,
    /// Connections one client address may hold at once; 0 for no cap.
    pub max_per_ip: usize,
    /// Addresses (load balancers, proxies) whose connections are not capped: they carry many
    /// clients' traffic.
    pub uncapped: Vec<IpNet>,
}

/// Open connections per client address.
#[derive(Default)]
struct OpenConnections(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; the count drops when the connection ends.
struct Slot {
    open: Arc<OpenConnections>,
    ip: IpAddr,
}

impl OpenConnections {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` fires; then stops accepting and lets open
/// connections finish their requests in flight (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(OpenConnections::default());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let capped =
            limits.max_per_ip > 0 && !limits.uncapped.iter().any(|n| n.contains(&peer.ip()));
        let slot = if capped {
            match open.take(peer.ip(), limits.max_per_ip) {
                Some(slot) => Some(slot),
                None => {
                    metrics::counter!("http_connections_refused_total", "reason" => "per_ip_cap")
                        .increment(1);
                    drop(stream);
                    continue;
                }
            }
        } else {
            None
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let watcher = graceful.watcher();
        let header_read_timeout = limits.header_read_timeout;
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            // The server tells HTTP/1 from HTTP/2 by the first bytes, and hyper's header timer
            // starts only after that: a client that sends nothing is timed out here.
            // Shutdown waits for every watcher: one that has not started to speak is let go.
            let mut first = [0u8; 1];
            tokio::select! {
                peeked = tokio::time::timeout(header_read_timeout, stream.peek(&mut first)) => {
                    if !matches!(peeked, Ok(Ok(n)) if n > 0) {
                        return;
                    }
                }
                _ = stopping.cancelled() => return,
            }
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                let router = router.clone();
                async move {
                    Ok::<_, Infallible>(router.oneshot(req).await.unwrap_or_else(|e| match e {}))
                }
            });
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            builder.http2().timer(TokioTimer::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
