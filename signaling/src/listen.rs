//! The HTTP listener: every connection must send its request headers within a deadline (and
//! an idle keep-alive connection its next request), no client address holds more than its
//! share of connections, and the process keeps file descriptors for its own work.
//!
//! An attack on a demo server held 300 silent connections open, sent headers at one byte per
//! 5 s for 70 s, and with a low file limit stopped `/healthz` and sign-in answering (issue 13
//! item 4): `axum::serve` sets no timer, so hyper's header timeout never ran, and it takes every
//! connection it is given. HTTP/1.1 only: hyper-util's automatic HTTP/1-or-2 connection first
//! waits, without any deadline, for the bytes that tell the versions apart, and browsers speak
//! HTTP/2 only over TLS (negotiated there, not guessed).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// What the listener allows.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Open connections per client address (0: no limit).
    pub per_ip: usize,
    /// Open connections in all.
    pub total: usize,
    /// Time a connection has to send a request's headers, and an idle one its next request.
    pub header_timeout: Duration,
}

/// File descriptors kept for everything but HTTP connections: the store, Redis, recordings,
/// media sockets, logs.
const FD_RESERVE: u64 = 256;

impl ConnLimits {
    /// `total` from the process's file limit, leaving `FD_RESERVE` for the rest.
    pub fn from_config(per_ip: usize, header_timeout: Duration) -> Self {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
        let total = usize::try_from(soft.saturating_sub(FD_RESERVE).max(16)).unwrap_or(usize::MAX);
        Self { per_ip, total, header_timeout }
    }
}

/// Open connections, per client address and in all.
#[derive(Clone, Default)]
struct Open {
    inner: Arc<Mutex<(HashMap<IpAddr, usize>, usize)>>,
    /// Told whenever a connection ends (the shutdown waits for the last one).
    ended: Arc<Notify>,
}

/// One admitted connection; dropping it gives its place back.
struct Place {
    open: Open,
    ip: IpAddr,
}

impl Open {
    fn admit(&self, ip: IpAddr, limits: &ConnLimits) -> Option<Place> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (per_ip, total) = &mut *g;
        let mine = per_ip.get(&ip).copied().unwrap_or(0);
        if *total >= limits.total || (limits.per_ip > 0 && mine >= limits.per_ip) {
            return None;
        }
        *total += 1;
        per_ip.insert(ip, mine + 1);
        Some(Place { open: self.clone(), ip })
    }

    fn total(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut g = self.open.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (per_ip, total) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        drop(g);
        self.open.ended.notify_waiters();
    }
}

/// Serves `app` until `shutdown` resolves, then asks every connection to finish its request
/// in flight and waits up to `drain` for them. Upgraded connections (WebSockets) leave hyper's
/// hands, and their place, once upgraded; the signaling layer limits those.
///
/// With `tls`, each connection first completes its TLS handshake, within the same deadline as
/// its headers (a slow handshake holds a place as a slow header would); `hsts` adds
/// Strict-Transport-Security to every answer.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) {
    let hsts = tls.as_ref().is_some_and(|t| t.hsts);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let (stop_tx, stop_rx) = watch::channel(false);
    let open = Open::default();
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // wait a moment rather than spin, as hyper's own examples do.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(place) = open.admit(addr.ip(), &limits) else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(ip = %addr.ip(), refused, "connection refused: too many open");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
            let answer = app.clone().oneshot(req);
            async move {
                let mut resp = answer.await?;
                if hsts {
                    resp.headers_mut().insert(
                        axum::http::header::STRICT_TRANSPORT_SECURITY,
                        axum::http::HeaderValue::from_static("max-age=31536000"),
                    );
                }
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let (builder, stop, tls) = (builder.clone(), stop_rx.clone(), tls.clone());
        let handshake = limits.header_timeout;
        tokio::spawn(async move {
            let _place = place;
            match tls {
                None => connection(&builder, TokioIo::new(stream), service, stop).await,
                Some(t) => match tokio::time::timeout(handshake, t.acceptor().accept(stream)).await {
                    Ok(Ok(tls_stream)) => connection(&builder, TokioIo::new(tls_stream), service, stop).await,
                    // Not TLS, a failed handshake, or too slow: nothing to answer.
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake too slow"),
                },
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = async {
        loop {
            let ended = open.ended.notified();
            if open.total() == 0 {
                return;
            }
            ended.await;
        }
    };
    if tokio::time::timeout(drain, drained).await.is_err() {
        tracing::warn!("requests still in flight at shutdown were cut off");
    }
}

/// Answers every plain-HTTP request with a permanent redirect to the same path over HTTPS on
/// `https_port` (`tls.redirect_listen`): someone who types the address without `https://`
/// lands on the secure page, where the browser gives the camera.
pub async fn redirect_to_https(listener: TcpListener, https_port: u16, acme: Option<crate::acme::Challenges>) {
    let app = Router::new().fallback(move |req: Request| async move {
        // An ACME CA checking that this host is ours (HTTP-01): the key authorisation as text.
        if let Some(token) = req.uri().path().strip_prefix("/.well-known/acme-challenge/") {
            return match acme.as_ref().and_then(|c| c.answer(token)) {
                Some(answer) => ([(axum::http::header::CONTENT_TYPE, "text/plain")], answer).into_response(),
                None => axum::http::StatusCode::NOT_FOUND.into_response(),
            };
        }
        let host = req
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(h, |(n, _)| n))
            .unwrap_or("localhost")
            .to_owned();
        let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
        let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        axum::response::Redirect::permanent(&format!("https://{host}{port}{path}")).into_response()
    });
    let limits = ConnLimits::from_config(0, Duration::from_secs(10));
    serve(listener, app, limits, None, std::future::pending::<()>(), Duration::from_secs(1)).await;
}

/// One HTTP/1.1 connection until it ends, or until the server stops (then its request in
/// flight finishes first).
async fn connection<I, S>(builder: &http1::Builder, io: I, service: S, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = axum::body::Body> + Send,
    S::Future: Send,
{
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    // A client that goes away or is too slow ends its own connection; nothing to say.
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_address_and_in_all_and_given_back() {
        let limits = ConnLimits { per_ip: 2, total: 3, header_timeout: Duration::from_secs(1) };
        let open = Open::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = open.admit(a, &limits);
        let a2 = open.admit(a, &limits);
        assert!(a1.is_some() && a2.is_some());
        assert!(open.admit(a, &limits).is_none(), "a third from one address");
        let b1 = open.admit(b, &limits);
        assert!(b1.is_some());
        assert!(open.admit(b, &limits).is_none(), "the fourth in all");
        drop(a1);
        assert!(open.admit(b, &limits).is_some(), "a place given back is taken again");
        drop((a2, b1));
        let g = open.inner.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!((g.0.len(), g.1), (0, 0), "every place was given back");
    }
}
