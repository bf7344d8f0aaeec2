//! The signaling channel: protocol, room rules, room tasks and WebSocket sessions.
pub mod caseview;
pub mod control;
pub mod hub;
pub mod media;
pub mod protocol;
pub mod room;
pub mod router;
pub mod session;
pub mod whip;
