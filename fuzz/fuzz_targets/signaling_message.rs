//! A signaling WebSocket text frame as a client sends it: parsed into a typed message and,
//! when it is one, handled by a room with a host and a participant in it (the room's rules,
//! not only the parser, must take anything a client can say).
#![no_main]

use std::time::{Duration, Instant};

use huizhen::auth::Grants;
use huizhen::rtc::protocol::ClientMessage;
use huizhen::rtc::room::{JoinRequest, Limits, Room};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = serde_json::from_slice::<ClientMessage>(data) else { return };
    let limits = Limits { max_participants: 10, chat_chars: 2000, reconnect_grace: Duration::from_secs(30) };
    let mut room = Room::new("fuzz".into(), limits);
    let host = Grants {
        can_publish: true,
        can_subscribe: true,
        can_publish_data: true,
        can_record: true,
        room_admin: true,
        hidden: false,
        audience: false,
    };
    let guest = Grants { room_admin: false, can_record: false, ..host };
    for (conn, (who, grants)) in [("host", host), ("guest", guest)].into_iter().enumerate() {
        let req = JoinRequest {
            conn: conn as u64,
            identity: who.into(),
            name: who.into(),
            grants,
            hello_id: "h".into(),
            live: true,
        };
        let _ = room.join(req);
    }
    let _ = room.message(0, msg.clone());
    let _ = room.message(1, msg);
    let _ = room.tick(Instant::now());
});
