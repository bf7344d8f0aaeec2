//! Which connection a datagram on a worker's one UDP socket belongs to.
//!
//! Every connection on a worker shares its socket, so each datagram is sorted in three steps:
//! its first byte (RFC 7983 §7: STUN, DTLS, RTP/RTCP, or something we never speak), then for
//! STUN the local half of the USERNAME attribute (RFC 8445 §7.2.2: `local-ufrag:remote-ufrag`,
//! and every connection has its own local ufrag), then for everything else the remote address
//! the connection's checks came from. A remote address is learned only from a STUN request
//! naming a known ufrag, the way ICE itself learns peer-reflexive candidates; the connection
//! then checks the request's MESSAGE-INTEGRITY, so an address learned from a forged request
//! carries only the forger's own datagrams to a connection that drops them.
//!
//! Pure: no socket, no clock. Anything not routed is counted by reason.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;

use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::message::{Message, is_stun_message};
use rtc::stun::textattrs::TextAttribute;

/// Remote addresses remembered per connection. A client that roams (Wi-Fi to 4G), or tries a
/// relay and a direct path, uses a few; a flood of requests from spoofed sources must not grow
/// the table without bound, so the oldest is forgotten.
pub const MAX_ADDRS_PER_CONN: usize = 8;

/// A STUN message larger than this is not ours (ICE checks are about 100 bytes).
pub const MAX_STUN_LEN: usize = 1200;

/// RFC 7983 §7: what the first byte of a datagram says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stun,
    Dtls,
    Rtp,
    /// ZRTP, TURN channel data or anything else: never ours on this socket.
    Other,
}

pub fn kind(datagram: &[u8]) -> Kind {
    match datagram.first() {
        Some(0..=3) => Kind::Stun,
        Some(20..=63) => Kind::Dtls,
        Some(128..=191) => Kind::Rtp,
        _ => Kind::Other,
    }
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unrouted {
    /// Empty, or a first byte no connection speaks.
    UnknownKind,
    /// Looked like STUN but did not parse, was too long, or had no usable USERNAME.
    BadStun,
    /// STUN naming a ufrag no connection on this worker has.
    UnknownUfrag,
    /// DTLS or SRTP from an address no connection has seen a check from.
    UnknownAddress,
}

impl Unrouted {
    pub const ALL: [Unrouted; 4] =
        [Unrouted::UnknownKind, Unrouted::BadStun, Unrouted::UnknownUfrag, Unrouted::UnknownAddress];

    /// Label for `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Unrouted::UnknownKind => "unknown_kind",
            Unrouted::BadStun => "bad_stun",
            Unrouted::UnknownUfrag => "unknown_ufrag",
            Unrouted::UnknownAddress => "unknown_address",
        }
    }
}

/// The routing table of one worker, over connection keys `K`.
#[derive(Debug)]
pub struct Demux<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<SocketAddr, K>,
    /// Each connection's ufrag and learned addresses (oldest first), to forget them together.
    conns: HashMap<K, (String, Vec<SocketAddr>)>,
    dropped: [u64; 4],
}

impl<K> Default for Demux<K> {
    fn default() -> Self {
        Self { by_ufrag: HashMap::new(), by_addr: HashMap::new(), conns: HashMap::new(), dropped: [0; 4] }
    }
}

/// Why a connection could not be added.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    #[error("the ufrag is already in use on this worker")]
    UfragTaken,
    #[error("the connection is already known")]
    Duplicate,
}

impl<K: Copy + Eq + Hash> Demux<K> {
    /// A new connection whose local ICE ufrag is `ufrag`.
    pub fn add(&mut self, conn: K, ufrag: &str) -> Result<(), AddError> {
        if self.by_ufrag.contains_key(ufrag) {
            return Err(AddError::UfragTaken);
        }
        if self.conns.contains_key(&conn) {
            return Err(AddError::Duplicate);
        }
        self.by_ufrag.insert(ufrag.to_owned(), conn);
        self.conns.insert(conn, (ufrag.to_owned(), Vec::new()));
        Ok(())
    }

    /// Forgets a connection, its ufrag and every address it was reached from.
    pub fn remove(&mut self, conn: K) {
        let Some((ufrag, addrs)) = self.conns.remove(&conn) else { return };
        self.by_ufrag.remove(&ufrag);
        for a in addrs {
            if self.by_addr.get(&a) == Some(&conn) {
                self.by_addr.remove(&a);
            }
        }
    }

    /// The connection `datagram` from `from` belongs to, or why it has none (counted).
    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> Result<K, Unrouted> {
        let r = self.classify(from, datagram);
        if let Err(d) = r {
            self.dropped[d as usize] += 1;
        }
        r
    }

    fn classify(&mut self, from: SocketAddr, datagram: &[u8]) -> Result<K, Unrouted> {
        match kind(datagram) {
            Kind::Stun => match local_ufrag(datagram)? {
                Some(ufrag) => {
                    let conn = *self.by_ufrag.get(ufrag.as_str()).ok_or(Unrouted::UnknownUfrag)?;
                    self.learn(conn, from);
                    Ok(conn)
                }
                // A response to a check of ours carries no USERNAME (RFC 8489 §14.3): it
                // comes from the address the check went to.
                None => self.by_addr.get(&from).copied().ok_or(Unrouted::UnknownAddress),
            },
            Kind::Dtls | Kind::Rtp => self.by_addr.get(&from).copied().ok_or(Unrouted::UnknownAddress),
            Kind::Other => Err(Unrouted::UnknownKind),
        }
    }

    /// The connection now also lives at `from` (a new candidate pair, or the client moved).
    fn learn(&mut self, conn: K, from: SocketAddr) {
        match self.by_addr.insert(from, conn) {
            Some(prev) if prev == conn => return,
            Some(prev) => {
                // The address moved to another connection (a port reused by the client's NAT).
                if let Some((_, addrs)) = self.conns.get_mut(&prev) {
                    addrs.retain(|a| *a != from);
                }
            }
            None => {}
        }
        let Some((_, addrs)) = self.conns.get_mut(&conn) else { return };
        addrs.push(from);
        if addrs.len() > MAX_ADDRS_PER_CONN {
            let oldest = addrs.remove(0);
            if self.by_addr.get(&oldest) == Some(&conn) {
                self.by_addr.remove(&oldest);
            }
        }
    }

    /// Datagrams dropped for `reason` so far.
    pub fn dropped(&self, reason: Unrouted) -> u64 {
        self.dropped[reason as usize]
    }

    /// Connections known.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Addresses remembered in all (bounded by connections × [`MAX_ADDRS_PER_CONN`]).
    pub fn addresses(&self) -> usize {
        self.by_addr.len()
    }
}

/// The receiver's half of a STUN USERNAME (`local:remote`; the local half is ours), or `None`
/// for a well-formed message without one (a response).
fn local_ufrag(datagram: &[u8]) -> Result<Option<String>, Unrouted> {
    if datagram.len() > MAX_STUN_LEN || !is_stun_message(datagram) {
        return Err(Unrouted::BadStun);
    }
    let mut m = Message::new();
    m.unmarshal_binary(datagram).map_err(|_| Unrouted::BadStun)?;
    if !m.contains(ATTR_USERNAME) {
        return Ok(None);
    }
    let username = TextAttribute::get_from_as(&m, ATTR_USERNAME).map_err(|_| Unrouted::BadStun)?;
    let (local, _) = username.text.split_once(':').ok_or(Unrouted::BadStun)?;
    if local.is_empty() {
        return Err(Unrouted::BadStun);
    }
    Ok(Some(local.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rtc::stun::message::{BINDING_REQUEST, Setter};
    use rtc::stun::textattrs::Username;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn binding(username: &str) -> Vec<u8> {
        let mut m = Message::new();
        m.set_type(BINDING_REQUEST);
        m.new_transaction_id().unwrap();
        Username::new(ATTR_USERNAME, username.to_owned()).add_to(&mut m).unwrap();
        m.write_header();
        m.raw.clone()
    }

    const DTLS: &[u8] = &[22, 254, 253, 0, 0];
    const SRTP: &[u8] = &[0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];

    #[test]
    fn first_byte_sorts_by_rfc_7983() {
        assert_eq!(kind(&[0]), Kind::Stun);
        assert_eq!(kind(&[3]), Kind::Stun);
        assert_eq!(kind(&[20]), Kind::Dtls);
        assert_eq!(kind(&[63]), Kind::Dtls);
        assert_eq!(kind(&[128]), Kind::Rtp);
        assert_eq!(kind(&[191]), Kind::Rtp);
        for other in [&[][..], &[4], &[16], &[19], &[64], &[79], &[127], &[192], &[255]] {
            assert_eq!(kind(other), Kind::Other, "{other:?}");
        }
    }

    #[test]
    fn stun_routes_by_local_ufrag_and_teaches_the_address() {
        let mut d = Demux::default();
        d.add(1u32, "aaaa").unwrap();
        d.add(2u32, "bbbb").unwrap();
        // Media before any check from that address is nobody's.
        assert_eq!(d.route(addr(5000), SRTP), Err(Unrouted::UnknownAddress));
        assert_eq!(d.route(addr(5000), &binding("bbbb:remote")), Ok(2));
        assert_eq!(d.route(addr(5000), SRTP), Ok(2));
        assert_eq!(d.route(addr(5000), DTLS), Ok(2));
        assert_eq!(d.route(addr(6000), &binding("aaaa:x")), Ok(1));
        assert_eq!(d.route(addr(6000), SRTP), Ok(1));
        assert_eq!(d.dropped(Unrouted::UnknownAddress), 1);
    }

    #[test]
    fn a_response_without_username_goes_to_the_connection_at_its_address() {
        let mut d = Demux::default();
        d.add(1u32, "aaaa").unwrap();
        let mut m = Message::new();
        m.set_type(rtc::stun::message::BINDING_SUCCESS);
        m.new_transaction_id().unwrap();
        m.write_header();
        assert_eq!(d.route(addr(5000), &m.raw), Err(Unrouted::UnknownAddress));
        d.route(addr(5000), &binding("aaaa:x")).unwrap();
        assert_eq!(d.route(addr(5000), &m.raw), Ok(1));
    }

    #[test]
    fn unknown_ufrag_junk_and_malformed_stun_are_dropped_and_counted() {
        let mut d = Demux::default();
        d.add(1u32, "aaaa").unwrap();
        assert_eq!(d.route(addr(1), &binding("zzzz:aaaa")), Err(Unrouted::UnknownUfrag));
        assert_eq!(d.route(addr(1), &binding("noseparator")), Err(Unrouted::BadStun));
        assert_eq!(d.route(addr(1), &binding(":aaaa")), Err(Unrouted::BadStun));
        let mut truncated = binding("aaaa:x");
        truncated.truncate(30);
        assert_eq!(d.route(addr(1), &truncated), Err(Unrouted::BadStun));
        let mut oversized = binding("aaaa:x");
        oversized.resize(MAX_STUN_LEN + 1, 0);
        assert_eq!(d.route(addr(1), &oversized), Err(Unrouted::BadStun));
        // Random bytes that pass the first-byte test but carry no magic cookie.
        assert_eq!(
            d.route(addr(1), &[0, 1, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Unrouted::BadStun)
        );
        assert_eq!(d.route(addr(1), &[]), Err(Unrouted::UnknownKind));
        assert_eq!(d.route(addr(1), &[0x40, 1, 2, 3]), Err(Unrouted::UnknownKind));
        assert_eq!(d.dropped(Unrouted::UnknownUfrag), 1);
        assert_eq!(d.dropped(Unrouted::BadStun), 5);
        assert_eq!(d.dropped(Unrouted::UnknownKind), 2);
        // None of it taught an address.
        assert_eq!(d.addresses(), 0);
    }

    #[test]
    fn a_client_that_moves_keeps_its_connection_and_a_reused_address_changes_hands() {
        let mut d = Demux::default();
        d.add(1u32, "aaaa").unwrap();
        d.add(2u32, "bbbb").unwrap();
        d.route(addr(5000), &binding("aaaa:x")).unwrap();
        // Wi-Fi to 4G: checks come from a new address; both work until the old one is dropped.
        assert_eq!(d.route(addr(7000), &binding("aaaa:x")), Ok(1));
        assert_eq!(d.route(addr(7000), SRTP), Ok(1));
        assert_eq!(d.route(addr(5000), SRTP), Ok(1));
        // The NAT hands the old port to another client's connection.
        assert_eq!(d.route(addr(5000), &binding("bbbb:y")), Ok(2));
        assert_eq!(d.route(addr(5000), SRTP), Ok(2));
        d.remove(1);
        assert_eq!(d.route(addr(7000), SRTP), Err(Unrouted::UnknownAddress));
        assert_eq!(d.route(addr(5000), SRTP), Ok(2), "removing one connection leaves the other's address");
        assert_eq!(d.route(addr(1), &binding("aaaa:x")), Err(Unrouted::UnknownUfrag));
        // The ufrag is free again.
        d.add(3u32, "aaaa").unwrap();
    }

    #[test]
    fn addresses_per_connection_are_bounded() {
        let mut d = Demux::default();
        d.add(1u32, "aaaa").unwrap();
        for port in 0..100 {
            d.route(addr(port), &binding("aaaa:x")).unwrap();
        }
        assert_eq!(d.addresses(), MAX_ADDRS_PER_CONN);
        // The newest are kept.
        assert_eq!(d.route(addr(99), SRTP), Ok(1));
        assert_eq!(d.route(addr(0), SRTP), Err(Unrouted::UnknownAddress));
    }

    #[test]
    fn ufrags_and_keys_are_unique() {
        let mut d = Demux::default();
        d.add(1u32, "aaaa").unwrap();
        assert_eq!(d.add(2, "aaaa"), Err(AddError::UfragTaken));
        assert_eq!(d.add(1, "cccc"), Err(AddError::Duplicate));
        assert_eq!(d.len(), 1);
    }
}
