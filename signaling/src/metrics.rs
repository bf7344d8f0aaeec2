//! Prometheus text exposition, written by hand: a handful of counters and gauges does not
//! justify a metrics framework.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Metrics {
    pub http_requests: [AtomicU64; 5],
    pub http_rate_limited: AtomicU64,
    pub logins_ok: AtomicU64,
    pub logins_failed: AtomicU64,
    pub transitions: AtomicU64,
    pub bookings_refused: AtomicU64,
    pub store_unavailable: AtomicU64,
    pub ws_connections: AtomicI64,
    pub ws_messages_in: AtomicU64,
    pub ws_limit_breaches: AtomicU64,
    pub rooms: AtomicI64,
    pub participants: AtomicI64,
}

impl Metrics {
    pub fn http(&self, status: u16) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.http_requests[class].fetch_add(1, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "huizhen_http_rate_limited_total",
            "HTTP requests refused by the per-IP rate limit.",
            self.http_rate_limited.load(Relaxed),
        );
        counter("huizhen_logins_total", "Successful logins.", self.logins_ok.load(Relaxed));
        counter("huizhen_logins_failed_total", "Failed logins.", self.logins_failed.load(Relaxed));
        counter(
            "huizhen_consultation_transitions_total",
            "Consultation state changes committed.",
            self.transitions.load(Relaxed),
        );
        counter(
            "huizhen_bookings_refused_total",
            "Bookings refused because a specialist was busy.",
            self.bookings_refused.load(Relaxed),
        );
        counter(
            "huizhen_store_unavailable_total",
            "Responses answered 503 because the store was unreachable.",
            self.store_unavailable.load(Relaxed),
        );
        counter("huizhen_ws_messages_total", "Signaling messages received.", self.ws_messages_in.load(Relaxed));
        counter(
            "huizhen_ws_limit_breaches_total",
            "Signaling messages refused by size or rate limits.",
            self.ws_limit_breaches.load(Relaxed),
        );
        let _ = writeln!(
            o,
            "# HELP huizhen_http_requests_total HTTP responses by status class.\n# TYPE huizhen_http_requests_total counter"
        );
        for (i, c) in self.http_requests.iter().enumerate() {
            let _ = writeln!(o, "huizhen_http_requests_total{{class=\"{}xx\"}} {}", i + 1, c.load(Relaxed));
        }
        for (name, help, v) in [
            ("huizhen_ws_connections", "Open signaling sockets.", self.ws_connections.load(Relaxed)),
            ("huizhen_rooms", "Rooms with a running task.", self.rooms.load(Relaxed)),
            ("huizhen_participants", "Participants in rooms (lobby included).", self.participants.load(Relaxed)),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        o
    }
}
