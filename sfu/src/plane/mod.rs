//! The media plane on webrtc-rs's sans-IO core (`rtc`): media workers, each one thread and one
//! UDP socket, driving many connections with time passed in (ARCHITECTURE.md §4, issue 12).

pub mod conn;
pub mod demux;
pub mod fuzzing;
pub mod io;
#[cfg(test)]
mod loopback;
pub mod relay;
pub mod room;
pub mod sender;
pub mod track;
pub mod worker;
