//! Session descriptions from outside (issue 18): a WHIP encoder's or a browser's offer, a WHEP
//! player's offer, and a WHIP/WHEP trickle fragment. The offer is applied to fresh publish and
//! subscribe connections and answered (`huizhen_sfu::plane::fuzzing::apply_offer`); the
//! fragment is read as `PATCH` reads it. The HTTP layer bounds both at 64 KiB first.
#![no_main]

use std::sync::LazyLock;

use huizhen_sfu::plane::conn::Identity;
use libfuzzer_sys::fuzz_target;

static IDENTITY: LazyLock<Identity> = LazyLock::new(|| Identity::generate().expect("certificate"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.len() > 64 * 1024 {
        return;
    }
    let fragment = huizhen::api::whip::parse_fragment(text);
    assert!(fragment.candidates.iter().all(|c| c.candidate.starts_with("candidate:")));
    huizhen_sfu::plane::fuzzing::apply_offer(&IDENTITY, text);
});
