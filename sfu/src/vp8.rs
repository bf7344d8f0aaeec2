//! VP8 picture numbering across simulcast switches. Each layer a browser sends has its own
//! PictureID and TL0PICIDX sequence (RFC 7741 §4.2). A subscriber moved from one layer to
//! another must see both continue where they were, as the sequence numbers do (`forward.rs`):
//! Chromium's receiver orders and references frames by PictureID, and a jump (back, or far
//! ahead) after a switch froze its picture for seconds while packets kept arriving.
//! Pure: the caller hands in the payload and says when a switch happened.

use bytes::{Bytes, BytesMut};

/// Where the numbers sit in a payload descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fields {
    /// Offset of the PictureID and whether it is 15 bits (M set) rather than 7.
    picture_id: Option<(usize, bool)>,
    tl0: Option<usize>,
}

fn fields(p: &[u8]) -> Option<Fields> {
    let b0 = *p.first()?;
    if b0 & 0x80 == 0 {
        return Some(Fields { picture_id: None, tl0: None });
    }
    let b1 = *p.get(1)?;
    let mut i = 2;
    let mut picture_id = None;
    if b1 & 0x80 != 0 {
        let long = *p.get(i)? & 0x80 != 0;
        picture_id = Some((i, long));
        i += if long { 2 } else { 1 };
    }
    let mut tl0 = None;
    if b1 & 0x40 != 0 {
        p.get(i)?;
        tl0 = Some(i);
        i += 1;
    }
    if b1 & 0x30 != 0 {
        i += 1;
    }
    // The descriptor must leave the VP8 payload behind it.
    (p.len() > i).then_some(Fields { picture_id, tl0 })
}

fn read_picture_id(p: &[u8], (at, long): (usize, bool)) -> u16 {
    if long { u16::from_be_bytes([p[at] & 0x7F, p[at + 1]]) } else { u16::from(p[at] & 0x7F) }
}

/// The numbers one subscriber's down-track has sent, and how far each layer's are moved.
#[derive(Debug, Default)]
pub struct PictureNumbers {
    picture_offset: u16,
    tl0_offset: u8,
    last_picture: Option<u16>,
    last_tl0: Option<u8>,
}

impl PictureNumbers {
    /// `switched`: this packet is the first of a new layer (a keyframe); the numbers continue
    /// from the last ones sent. Returns the payload to send: the same bytes when nothing
    /// moves, else a copy with the descriptor's numbers rewritten.
    pub fn rewrite(&mut self, payload: &Bytes, switched: bool) -> Bytes {
        let Some(f) = fields(payload) else { return payload.clone() };
        let picture = f.picture_id.map(|at| read_picture_id(payload, at));
        let tl0 = f.tl0.map(|at| payload[at]);
        if switched {
            if let (Some(last), Some(now)) = (self.last_picture, picture) {
                self.picture_offset = last.wrapping_add(1).wrapping_sub(now) & 0x7FFF;
            }
            if let (Some(last), Some(now)) = (self.last_tl0, tl0) {
                self.tl0_offset = last.wrapping_add(1).wrapping_sub(now);
            }
        }
        let out_picture = picture.map(|p| p.wrapping_add(self.picture_offset) & 0x7FFF);
        let out_tl0 = tl0.map(|t| t.wrapping_add(self.tl0_offset));
        if let Some(p) = out_picture
            && self.last_picture.is_none_or(|last| newer15(p, last))
        {
            self.last_picture = Some(p);
        }
        if let Some(t) = out_tl0
            && self.last_tl0.is_none_or(|last| t.wrapping_sub(last) < 0x80)
        {
            self.last_tl0 = Some(t);
        }
        if self.picture_offset == 0 && self.tl0_offset == 0 {
            return payload.clone();
        }
        let mut out = BytesMut::from(&payload[..]);
        if let (Some((at, long)), Some(p)) = (f.picture_id, out_picture) {
            if long {
                let [hi, lo] = p.to_be_bytes();
                out[at] = 0x80 | hi;
                out[at + 1] = lo;
            } else {
                out[at] = (p & 0x7F) as u8;
            }
        }
        if let (Some(at), Some(t)) = (f.tl0, out_tl0) {
            out[at] = t;
        }
        out.freeze()
    }
}

/// `a` comes after `b` in 15-bit PictureID order.
fn newer15(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) & 0x7FFF < 0x4000
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A descriptor with X, I (15-bit PictureID), L (TL0PICIDX), T, then one payload byte.
    fn packet(picture: u16, tl0: u8) -> Bytes {
        let [hi, lo] = picture.to_be_bytes();
        Bytes::from(vec![0x90, 0xE0, 0x80 | hi, lo, tl0, 0x40, 0x9D])
    }

    fn numbers(p: &Bytes) -> (u16, u8) {
        let f = fields(p).unwrap();
        (read_picture_id(p, f.picture_id.unwrap()), p[f.tl0.unwrap()])
    }

    #[test]
    fn a_switch_continues_the_numbers_of_the_layer_before() {
        let mut n = PictureNumbers::default();
        // The low layer: pictures 1000.., TL0 7..; passed through untouched.
        for i in 0..3 {
            let p = packet(1000 + i, 7 + i as u8);
            assert_eq!(n.rewrite(&p, false), p);
        }
        // The high layer's keyframe, numbered 20000 / 200: moved to follow 1002 / 9.
        assert_eq!(numbers(&n.rewrite(&packet(20_000, 200), true)), (1003, 10));
        assert_eq!(numbers(&n.rewrite(&packet(20_001, 200), false)), (1004, 10));
        assert_eq!(numbers(&n.rewrite(&packet(20_002, 201), false)), (1005, 11));
        // Back down to a layer numbered below: still forward, across the 15-bit wrap too.
        assert_eq!(numbers(&n.rewrite(&packet(32_767, 5), true)), (1006, 12));
        let mut w = PictureNumbers::default();
        w.rewrite(&packet(32_766, 255), false);
        assert_eq!(numbers(&w.rewrite(&packet(10, 3), true)), (32_767, 0));
        assert_eq!(numbers(&w.rewrite(&packet(11, 3), false)), (0, 0));
    }

    #[test]
    fn short_picture_ids_and_bare_descriptors() {
        let mut n = PictureNumbers::default();
        // 7-bit PictureID (M clear), no TL0PICIDX.
        let short = |p: u8| Bytes::from(vec![0x90, 0x80, p & 0x7F, 0x9D]);
        n.rewrite(&short(120), false);
        let out = n.rewrite(&short(3), true);
        assert_eq!(out[2], 121);
        // No extension (X clear), a truncated descriptor: untouched, no panic.
        let bare = Bytes::from_static(&[0x10, 0x9D, 0x01]);
        assert_eq!(n.rewrite(&bare, true), bare);
        let cut = Bytes::from_static(&[0x90, 0xC0, 0x80]);
        assert_eq!(n.rewrite(&cut, true), cut);
        assert_eq!(n.rewrite(&Bytes::new(), false), Bytes::new());
    }
}
