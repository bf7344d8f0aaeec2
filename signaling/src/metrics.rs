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

    /// The exposition of these counters and of the media plane's.
    pub fn render(&self, media: &huizhen_sfu::SfuStats) -> String {
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
            // A leak of tasks (a socket's, a room's) shows here first: the soak watches it.
            ("huizhen_tokio_tasks", "Tasks alive on the async runtime.", alive_tasks()),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        render_media(&mut o, media);
        o
    }
}

fn render_media(o: &mut String, m: &huizhen_sfu::SfuStats) {
    for (name, help, v) in [
        (
            "huizhen_media_forwarded_packets_total",
            "RTP packets sent to subscribers.",
            m.forwarded_packets.load(Relaxed),
        ),
        (
            "huizhen_media_dropped_packets_total",
            "Packets a subscriber or the recorder lost at the server: its socket buffer or queue was full.",
            m.dropped_packets.load(Relaxed),
        ),
        (
            "huizhen_media_unrouted_datagrams_total",
            "UDP datagrams on a media port that belonged to no connection (dropped).",
            m.unrouted_datagrams.load(Relaxed),
        ),
        (
            "huizhen_media_keyframe_requests_total",
            "Keyframe requests sent to publishers.",
            m.keyframe_requests.load(Relaxed),
        ),
        (
            "huizhen_media_layer_switches_total",
            "Simulcast layer switches of down-tracks.",
            m.layer_switches.load(Relaxed),
        ),
        (
            "huizhen_media_retransmitted_packets_total",
            "Packets sent to a subscriber again after it reported them lost (NACK).",
            m.retransmitted_packets.load(Relaxed),
        ),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
    for (name, help, v) in [
        ("huizhen_media_rooms", "Rooms with media on a worker.", m.rooms.load(Relaxed)),
        (
            "huizhen_media_connections",
            "Media connections (two per participant at most).",
            m.peer_connections.load(Relaxed),
        ),
        ("huizhen_media_published_tracks", "Tracks being published.", m.published_tracks.load(Relaxed)),
        ("huizhen_media_down_tracks", "Tracks being sent to subscribers.", m.down_tracks.load(Relaxed)),
        (
            "huizhen_media_whep_waiting",
            "WHEP offers waiting for their source's first packets.",
            m.watches_waiting.load(Relaxed),
        ),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    turn_histogram(
        o,
        "huizhen_media_turn_seconds",
        "How long media worker turns took (a datagram arriving during one waits for it).",
        &m.turns,
    );
    turn_histogram(
        o,
        "huizhen_media_turn_cpu_seconds",
        "CPU time media workers spent in their turns (below the turns' length: waiting for a core).",
        &m.turns_cpu,
    );
    // Ids only (consultation and account ids, no names): nothing about the patient.
    let name = "huizhen_media_send_drops_total";
    let _ = writeln!(
        o,
        "# HELP {name} Datagrams a connection lost at the server's socket, by room, participant and connection.\n# TYPE {name} counter"
    );
    for (room, participant, target, n) in m.send_drops() {
        let (room, participant) = (label(&room), label(&participant));
        let _ = writeln!(o, "{name}{{room=\"{room}\",participant=\"{participant}\",connection=\"{target}\"}} {n}");
    }
}

/// Tasks alive on the runtime this is called on (0 outside one).
fn alive_tasks() -> i64 {
    tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_alive_tasks() as i64)
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One worker-turn histogram in Prometheus's text form (cumulative buckets, in seconds).
fn turn_histogram(o: &mut String, name: &str, help: &str, h: &huizhen_sfu::TurnHistogram) {
    use std::fmt::Write;
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} histogram");
    let (buckets, sum_us) = h.snapshot();
    let mut cumulative = 0;
    for (i, n) in buckets.iter().enumerate() {
        cumulative += n;
        match huizhen_sfu::TURN_BUCKETS_US.get(i) {
            Some(us) => {
                let _ = writeln!(o, "{name}_bucket{{le=\"{}\"}} {cumulative}", *us as f64 / 1e6);
            }
            None => {
                let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
            }
        }
    }
    let _ = writeln!(o, "{name}_sum {}\n{name}_count {cumulative}", sum_us as f64 / 1e6);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn send_drops_are_shown_per_connection_with_escaped_labels() {
        let media = huizhen_sfu::SfuStats::default();
        media.note_send_drops("c1", "u\"1", huizhen_sfu::PcTarget::Subscribe, 3);
        let text = Metrics::default().render(&media);
        assert!(
            text.contains(r#"huizhen_media_send_drops_total{room="c1",participant="u\"1",connection="subscribe"} 3"#),
            "{text}"
        );
        assert!(text.contains("huizhen_media_dropped_packets_total 3"), "{text}");
    }

    #[test]
    fn worker_turns_are_a_cumulative_histogram_in_seconds() {
        let media = huizhen_sfu::SfuStats::default();
        for us in [100, 400, 3_000, 200_000] {
            media.turns.observe(std::time::Duration::from_micros(us));
        }
        let text = Metrics::default().render(&media);
        for line in [
            "huizhen_media_turn_seconds_bucket{le=\"0.00025\"} 1",
            "huizhen_media_turn_seconds_bucket{le=\"0.0005\"} 2",
            "huizhen_media_turn_seconds_bucket{le=\"0.002\"} 2",
            "huizhen_media_turn_seconds_bucket{le=\"0.005\"} 3",
            "huizhen_media_turn_seconds_bucket{le=\"0.1\"} 3",
            "huizhen_media_turn_seconds_bucket{le=\"+Inf\"} 4",
            "huizhen_media_turn_seconds_sum 0.2035",
            "huizhen_media_turn_seconds_count 4",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
