//! Is this RTP payload the first packet of a keyframe? A subscriber may only start (or switch
//! layers) on one, or its decoder shows garbage until the next.

/// VP8 (RFC 7741 §4.2–4.3): payload descriptor, then the VP8 payload header whose P bit is 0
/// for a key frame. Only the packet that starts a partition (S=1, PID=0) carries that header.
pub fn vp8_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let x = b0 & 0x80 != 0;
    let s = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    if !s || pid != 0 {
        return false;
    }
    let mut i = 1;
    if x {
        let Some(&b1) = p.get(1) else { return false };
        i = 2;
        if b1 & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set.
            let Some(&pic) = p.get(i) else { return false };
            i += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if b1 & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if b1 & 0x30 != 0 {
            i += 1; // TID / KEYIDX
        }
    }
    p.get(i).is_some_and(|h| h & 0x01 == 0)
}

/// H.264 (RFC 6184): an IDR slice or an SPS in a single NAL unit, a STAP-A aggregate, or the
/// first fragment of an FU-A.
pub fn h264_keyframe_start(p: &[u8]) -> bool {
    let key = |t: u8| t == 5 || t == 7;
    let Some(&b0) = p.first() else { return false };
    match b0 & 0x1F {
        t @ 1..=23 => key(t),
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                if size == 0 {
                    return false;
                }
                if p.get(i + 2).is_some_and(|n| key(n & 0x1F)) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => p.get(1).is_some_and(|fu| fu & 0x80 != 0 && key(fu & 0x1F)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_key_and_delta_frames() {
        // X=1, S=1, PID=0; I=1 with a 2-byte picture id; then a key frame header (P=0).
        assert!(vp8_keyframe_start(&[0x90, 0x80, 0x81, 0x23, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]));
        // Same with P=1: a delta frame.
        assert!(!vp8_keyframe_start(&[0x90, 0x80, 0x81, 0x23, 0x11]));
        // Continuation packet (S=0).
        assert!(!vp8_keyframe_start(&[0x80, 0x80, 0x81, 0x23, 0x10]));
        // No extension: descriptor is one byte.
        assert!(vp8_keyframe_start(&[0x10, 0x50]));
        assert!(!vp8_keyframe_start(&[]));
        assert!(!vp8_keyframe_start(&[0x90]));
    }

    #[test]
    fn h264_idr_sps_stap_fua() {
        assert!(h264_keyframe_start(&[0x65, 0x88]));
        assert!(h264_keyframe_start(&[0x67, 0x42]));
        assert!(!h264_keyframe_start(&[0x41, 0x9a]));
        // STAP-A with SPS inside.
        assert!(h264_keyframe_start(&[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]));
        // FU-A start of IDR, and its continuation.
        assert!(h264_keyframe_start(&[0x7c, 0x85, 0x00]));
        assert!(!h264_keyframe_start(&[0x7c, 0x05, 0x00]));
    }
}
