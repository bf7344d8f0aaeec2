//! The media plane on webrtc-rs's sans-IO core (`rtc`): media workers, each one thread and one
//! UDP socket, driving many connections with time passed in (ARCHITECTURE.md §4, issue 12).
//!
//! Being built beside the current plane (`room.rs`, `track.rs`, on the async `webrtc`
//! wrapper), which still carries the server's media until this one passes the same tests.

pub mod demux;
