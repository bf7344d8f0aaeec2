//! Datagrams as they reach a media worker's socket: demux, then a real publish and subscribe
//! connection (`huizhen_sfu::plane::fuzzing`). Fresh connections per input, so a crash
//! reproduces from its input alone.
#![no_main]

use std::sync::LazyLock;

use huizhen_sfu::plane::conn::Identity;
use huizhen_sfu::plane::fuzzing::DatagramHarness;
use libfuzzer_sys::fuzz_target;

static IDENTITY: LazyLock<Identity> = LazyLock::new(|| Identity::generate().expect("certificate"));

fuzz_target!(|data: &[u8]| {
    DatagramHarness::with_identity(&IDENTITY).feed(data);
});
