//! A TURN client's TCP or TLS stream as the built-in TURN server cuts it into frames
//! (`turn_server::read_frame`): any bytes. Each frame is a STUN message or ChannelData of the
//! length its header gives, never more than one STUN message can be; the rest is an error or
//! the end, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|_| std::process::abort());
    rt.block_on(async {
        let mut r = data;
        let mut taken = 0usize;
        while let Ok(Some(frame)) = huizhen::turn_server::read_frame(&mut r).await {
            assert!(frame.len() >= 4 && frame.len() <= 20 + 65_535, "frame of {} bytes", frame.len());
            taken += frame.len();
            assert!(taken <= data.len());
        }
    });
});
