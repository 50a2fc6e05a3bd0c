//! What the guest program `sim_guest` (inside a QEMU guest whose NIC is `ixgbe-sim`) and the host
//! peer `sim_peer` (on ixgbe-sim's UDP wire, one datagram per Ethernet frame) exchange.
//!
//! Data frames are IPv4/UDP. Both sides compute every payload from its direction, sequence number
//! and flow, so each side checks what it received byte by byte without storing anything. The
//! peer builds and parses whole Ethernet frames (ARP, ICMP echo, UDP with checksums); the guest
//! uses plain UDP sockets and sees payloads only. Control messages are short ASCII lines on
//! their own UDP ports (`TXDONE 100`, `ACK 64`, ...).
//!
//! Forwarding cases use raw `SFWD` frames (EtherType 0x88B5) that the guest's forwarder sends
//! back unchanged except for byte 1, which it increments.
//!
//! This file is shared by the bins through `#[path]` includes, so not every bin uses every item.
#![allow(dead_code)]

/// MAC address of the host peer (locally administered).
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
/// The peer's IPv4 address (answers ARP and ICMP echo for it).
pub const PEER_IP: [u8; 4] = [10, 0, 0, 1];
/// The guest's IPv4 address on the port under test.
pub const GUEST_IP: [u8; 4] = [10, 0, 0, 2];
/// Control messages from the guest go to this peer port.
pub const PEER_CTRL_PORT: u16 = 5000;
/// Guest → host data frames go to this peer port.
pub const PEER_DATA_PORT: u16 = 5001;
/// Host → guest data frames go to this guest port; guest → host frames come from it.
pub const GUEST_DATA_PORT: u16 = 6000;
/// The guest's control socket.
pub const GUEST_CTRL_PORT: u16 = 6001;
/// Host → guest flow `f` comes from 10.0.0.(FLOW_IP_BASE + f) port FLOW_PORT_BASE + f.
pub const FLOW_IP_BASE: u8 = 100;
/// See [`FLOW_IP_BASE`].
pub const FLOW_PORT_BASE: u16 = 7000;
/// Most flows (keeps the source addresses inside 10.0.0.100..=10.0.0.227).
pub const MAX_FLOWS: u32 = 128;
/// Smallest UDP payload used.
pub const MIN_PAYLOAD: usize = 16;
/// Largest UDP payload used: 1514-byte frames.
pub const MAX_PAYLOAD: usize = 1472;
/// EtherType of the forwarding cases' frames (IEEE 802 local experimental 1).
pub const FWD_ETHERTYPE: u16 = 0x88B5;
/// Smallest Ethernet frame without FCS.
pub const MIN_FRAME: usize = 60;
const ETH_HDR: usize = 14;
const IP_HDR: usize = 20;
const UDP_HDR: usize = 8;
const HEADER: usize = 16;

/// Direction of a data payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Guest → host.
    GuestToHost,
    /// Host → guest.
    HostToGuest,
}

impl Dir {
    fn tag(self) -> &'static [u8; 4] {
        match self {
            Dir::GuestToHost => b"SGTX",
            Dir::HostToGuest => b"SHRX",
        }
    }
}

/// UDP payload length of data frame `seq` out of `count`: spread over 16..=1472, the first and
/// the last frame at the two ends.
pub fn payload_len(dir: Dir, seq: u32, count: u32) -> usize {
    if seq == 0 {
        return MIN_PAYLOAD;
    }
    if seq + 1 == count {
        return MAX_PAYLOAD;
    }
    let span = (MAX_PAYLOAD - MIN_PAYLOAD + 1) as u64;
    let mul: u64 = match dir {
        Dir::GuestToHost => 389,
        Dir::HostToGuest => 131,
    };
    MIN_PAYLOAD + ((seq as u64 * mul) % span) as usize
}

fn pattern_byte(dir: Dir, seq: u32, flow: u16, k: usize) -> u8 {
    let (a, b, c) = match dir {
        Dir::GuestToHost => (7u32, 13u32, 0x11u32),
        Dir::HostToGuest => (11, 3, 0x5a),
    };
    (seq.wrapping_mul(a)
        .wrapping_add(k as u32 * b)
        .wrapping_add(flow as u32 * 29)
        ^ c) as u8
}

/// The payload of data frame `seq` of `count` in flow `flow`: tag, seq, count, flow, length,
/// then a pattern that depends on direction, seq, flow and offset.
pub fn payload(dir: Dir, seq: u32, count: u32, flow: u16) -> Vec<u8> {
    let len = payload_len(dir, seq, count);
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(dir.tag());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&count.to_be_bytes());
    p.extend_from_slice(&flow.to_be_bytes());
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p.extend((HEADER..len).map(|k| pattern_byte(dir, seq, flow, k)));
    p
}

/// Checks a received payload byte by byte against what `payload` computes for the sequence
/// number it carries. Returns `(seq, flow)`.
pub fn check_payload(dir: Dir, p: &[u8], count: u32) -> Result<(u32, u16), String> {
    if p.len() < HEADER || &p[..4] != dir.tag() {
        return Err(format!("{} bytes without the {:?} tag", p.len(), dir));
    }
    let seq = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    let cnt = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
    let flow = u16::from_be_bytes([p[12], p[13]]);
    if cnt != count || seq >= count {
        return Err(format!("seq {seq} count {cnt}, expected count {count}"));
    }
    let want = payload(dir, seq, count, flow);
    if p.len() != want.len() {
        return Err(format!(
            "seq {seq}: {} bytes, expected {}",
            p.len(),
            want.len()
        ));
    }
    if let Some(k) = (0..p.len()).find(|&k| p[k] != want[k]) {
        return Err(format!(
            "seq {seq}: byte {k} is {:#04x}, expected {:#04x}",
            p[k], want[k]
        ));
    }
    Ok((seq, flow))
}

/// FNV-1a over `bytes`, continuing from `h` (start with 0x811c9dc5).
pub fn fnv1a(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Order-independent digest of a set of payloads: the wrapping sum of their FNV-1a hashes
/// (frames of different flows may arrive on different queues in any order).
pub fn digest_add(acc: u32, payload: &[u8]) -> u32 {
    acc.wrapping_add(fnv1a(0x811c_9dc5, payload))
}

/// The digest of all `count` host → guest payloads of `flows` flows.
pub fn expected_rx_digest(count: u32, flows: u32) -> u32 {
    (0..count).fold(0, |acc, seq| {
        digest_add(
            acc,
            &payload(Dir::HostToGuest, seq, count, flow_of(seq, flows)),
        )
    })
}

/// Flow of host → guest frame `seq`.
pub fn flow_of(seq: u32, flows: u32) -> u16 {
    (seq % flows) as u16
}

/// Source address and port of flow `f`.
pub fn flow_source(f: u16) -> ([u8; 4], u16) {
    (
        [10, 0, 0, FLOW_IP_BASE.wrapping_add(f as u8)],
        FLOW_PORT_BASE + f,
    )
}

/// The Internet checksum (RFC 1071) over `data`, folded, complemented, starting from `sum`.
pub fn inet_checksum(sum: u32, data: &[u8]) -> u16 {
    let mut s = sum;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        s += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = chunks.remainder() {
        s += (*b as u32) << 8;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn pseudo_sum(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u32 {
    u16::from_be_bytes([src[0], src[1]]) as u32
        + u16::from_be_bytes([src[2], src[3]]) as u32
        + u16::from_be_bytes([dst[0], dst[1]]) as u32
        + u16::from_be_bytes([dst[2], dst[3]]) as u32
        + proto as u32
        + len as u32
}

fn eth_header(f: &mut Vec<u8>, dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
}

/// Pads a frame to the 60-byte Ethernet minimum, as a transmitter does.
fn pad(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < MIN_FRAME {
        f.resize(MIN_FRAME, 0);
    }
    f
}

fn ipv4_header(f: &mut Vec<u8>, src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: usize, id: u16) {
    let start = f.len();
    let tot = (IP_HDR + l4_len) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&tot.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    let c = inet_checksum(0, &f[start..start + IP_HDR]);
    f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
}

/// A whole IPv4/UDP Ethernet frame with valid IP and UDP checksums, padded to 60 bytes.
#[allow(clippy::too_many_arguments)]
pub fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    id: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HDR + IP_HDR + UDP_HDR + data.len());
    eth_header(&mut f, dst_mac, src_mac, 0x0800);
    let l4_len = UDP_HDR + data.len();
    ipv4_header(&mut f, src, dst, 17, l4_len, id);
    let u = f.len();
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(l4_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(data);
    let mut c = inet_checksum(pseudo_sum(src, dst, 17, l4_len), &f[u..]);
    if c == 0 {
        c = 0xffff; // RFC 768: a computed 0 is sent as all ones
    }
    f[u + 6..u + 8].copy_from_slice(&c.to_be_bytes());
    pad(f)
}

/// An IPv4 packet taken apart, with its checksums checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4<'a> {
    /// Destination MAC of the frame.
    pub dst_mac: [u8; 6],
    /// Source MAC of the frame.
    pub src_mac: [u8; 6],
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// IP protocol.
    pub proto: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification field.
    pub id: u16,
    /// The layer-4 bytes (header and data), without Ethernet padding.
    pub l4: &'a [u8],
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender MAC.
    pub sha: [u8; 6],
    /// Sender IP.
    pub spa: [u8; 4],
    /// Target MAC.
    pub tha: [u8; 6],
    /// Target IP.
    pub tpa: [u8; 4],
}

/// What a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// ARP for IPv4.
    Arp(Arp),
    /// IPv4 with a valid header checksum.
    Ipv4(Ipv4<'a>),
    /// Something else, with its EtherType and why it is not one of the above.
    Other(u16, String),
}

fn mac_at(f: &[u8], o: usize) -> [u8; 6] {
    let mut m = [0; 6];
    m.copy_from_slice(&f[o..o + 6]);
    m
}

fn ip_at(f: &[u8], o: usize) -> [u8; 4] {
    [f[o], f[o + 1], f[o + 2], f[o + 3]]
}

/// Takes a frame apart. Checks the IPv4 header (version, IHL 5, total length against the frame
/// and its padding, checksum); padding is only accepted on 60-byte frames.
pub fn parse(f: &[u8]) -> Parsed<'_> {
    if f.len() < ETH_HDR {
        return Parsed::Other(0, format!("runt frame of {} bytes", f.len()));
    }
    let et = u16::from_be_bytes([f[12], f[13]]);
    let body = &f[ETH_HDR..];
    match et {
        0x0806 => {
            if body.len() < 28 || body[..6] != [0, 1, 8, 0, 6, 4] {
                return Parsed::Other(et, "ARP that is not IPv4 over Ethernet".into());
            }
            Parsed::Arp(Arp {
                op: u16::from_be_bytes([body[6], body[7]]),
                sha: mac_at(body, 8),
                spa: ip_at(body, 14),
                tha: mac_at(body, 18),
                tpa: ip_at(body, 24),
            })
        }
        0x0800 => {
            if body.len() < IP_HDR || body[0] != 0x45 {
                return Parsed::Other(et, "IPv4 header is not version 4 / IHL 5".into());
            }
            let tot = u16::from_be_bytes([body[2], body[3]]) as usize;
            if tot < IP_HDR || tot > body.len() {
                return Parsed::Other(et, format!("IPv4 total length {tot} of {}", body.len()));
            }
            if tot < body.len() && f.len() != MIN_FRAME {
                return Parsed::Other(
                    et,
                    format!(
                        "{} bytes after the IPv4 packet of a {}-byte frame",
                        body.len() - tot,
                        f.len()
                    ),
                );
            }
            if inet_checksum(0, &body[..IP_HDR]) != 0 {
                return Parsed::Other(et, "bad IPv4 header checksum".into());
            }
            Parsed::Ipv4(Ipv4 {
                dst_mac: mac_at(f, 0),
                src_mac: mac_at(f, 6),
                src: ip_at(body, 12),
                dst: ip_at(body, 16),
                proto: body[9],
                ttl: body[8],
                id: u16::from_be_bytes([body[4], body[5]]),
                l4: &body[IP_HDR..tot],
            })
        }
        _ => Parsed::Other(et, "not IPv4 or ARP".into()),
    }
}

/// A UDP datagram checked against its pseudo-header checksum (a zero checksum is refused: Linux
/// always sends one over IPv4, so a zero would mean the checksum offload did not run).
pub fn parse_udp<'a>(ip: &Ipv4<'a>) -> Result<(u16, u16, &'a [u8]), String> {
    let l4 = ip.l4;
    if ip.proto != 17 || l4.len() < UDP_HDR {
        return Err(format!(
            "protocol {} with {} bytes is not UDP",
            ip.proto,
            l4.len()
        ));
    }
    let ulen = u16::from_be_bytes([l4[4], l4[5]]) as usize;
    if ulen != l4.len() {
        return Err(format!("UDP length {ulen}, IP payload {}", l4.len()));
    }
    let csum = u16::from_be_bytes([l4[6], l4[7]]);
    if csum == 0 {
        return Err("UDP checksum is 0 (not computed)".into());
    }
    if inet_checksum(pseudo_sum(ip.src, ip.dst, 17, l4.len()), l4) != 0 {
        return Err(format!("bad UDP checksum {csum:#06x}"));
    }
    Ok((
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
        &l4[UDP_HDR..],
    ))
}

/// The ARP reply to `req` from (`mac`, `ip`).
pub fn arp_reply(req: &Arp, mac: [u8; 6], ip: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(MIN_FRAME);
    eth_header(&mut f, req.sha, mac, 0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&req.sha);
    f.extend_from_slice(&req.spa);
    pad(f)
}

/// The ICMP echo reply to an echo request `ip` (same identifier, sequence and data), or `None`
/// when `ip` is not a well-formed echo request.
pub fn icmp_echo_reply(ip: &Ipv4<'_>, my_mac: [u8; 6]) -> Option<Vec<u8>> {
    let l4 = ip.l4;
    if ip.proto != 1 || l4.len() < 8 || l4[0] != 8 || l4[1] != 0 || inet_checksum(0, l4) != 0 {
        return None;
    }
    let mut f = Vec::with_capacity(ETH_HDR + IP_HDR + l4.len());
    eth_header(&mut f, ip.src_mac, my_mac, 0x0800);
    ipv4_header(&mut f, ip.dst, ip.src, 1, l4.len(), ip.id);
    let start = f.len();
    f.extend_from_slice(l4);
    f[start] = 0;
    f[start + 2] = 0;
    f[start + 3] = 0;
    let c = inet_checksum(0, &f[start..]);
    f[start + 2..start + 4].copy_from_slice(&c.to_be_bytes());
    Some(pad(f))
}

/// Length of forwarding frame `seq` of `count`: 60..=1514, both ends hit.
pub fn fwd_len(seq: u32, count: u32) -> usize {
    if seq == 0 {
        return MIN_FRAME;
    }
    if seq + 1 == count {
        return 1514;
    }
    MIN_FRAME + ((seq as u64 * 277) % (1514 - MIN_FRAME as u64 + 1)) as usize
}

/// Forwarding frame `seq` of `count` as the peer injects it: broadcast-free unicast to `dst`,
/// EtherType 0x88B5, tag `SFWD`, seq, count, then a pattern.
pub fn fwd_frame(seq: u32, count: u32, dst: [u8; 6]) -> Vec<u8> {
    let len = fwd_len(seq, count);
    let mut f = Vec::with_capacity(len);
    eth_header(&mut f, dst, PEER_MAC, FWD_ETHERTYPE);
    f.extend_from_slice(b"SFWD");
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&count.to_be_bytes());
    f.extend(
        (f.len()..len).map(|k| (seq.wrapping_mul(5).wrapping_add(k as u32 * 17) ^ 0x3c) as u8),
    );
    f
}

/// Checks a frame that came back from the forwarder: `fwd_frame` with byte 1 incremented.
/// Returns its sequence number.
pub fn check_fwd_frame(f: &[u8], count: u32, dst: [u8; 6]) -> Result<u32, String> {
    check_sfwd(f, count, dst, 1)
}

/// Checks a frame exactly as the peer injected it (`fwd_frame`, e.g. read back from a capture).
/// Returns its sequence number.
pub fn check_injected_frame(f: &[u8], count: u32, dst: [u8; 6]) -> Result<u32, String> {
    check_sfwd(f, count, dst, 0)
}

/// `fwd_frame` with `bump` added to byte 1. Returns its sequence number.
pub fn check_sfwd(f: &[u8], count: u32, dst: [u8; 6], bump: u8) -> Result<u32, String> {
    if f.len() < 26 || f[12..14] != FWD_ETHERTYPE.to_be_bytes() || &f[14..18] != b"SFWD" {
        return Err(format!("{}-byte frame that is not an SFWD frame", f.len()));
    }
    let seq = u32::from_be_bytes([f[18], f[19], f[20], f[21]]);
    if seq >= count {
        return Err(format!("seq {seq} out of range (count {count})"));
    }
    let mut want = fwd_frame(seq, count, dst);
    want[1] = want[1].wrapping_add(bump);
    if f.len() != want.len() {
        return Err(format!(
            "seq {seq}: {} bytes, expected {}",
            f.len(),
            want.len()
        ));
    }
    if let Some(k) = (0..f.len()).find(|&k| f[k] != want[k]) {
        return Err(format!(
            "seq {seq}: byte {k} is {:#04x}, expected {:#04x}",
            f[k], want[k]
        ));
    }
    Ok(seq)
}

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// Formats a MAC address.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Formats an IPv4 address.
pub fn fmt_ip(a: &[u8; 4]) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

/// The value of `key=` in a control line of `key=value` words.
pub fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST_MAC: [u8; 6] = [0x00, 0x1b, 0x21, 0, 0, 1];

    #[test]
    fn payload_lengths_cover_the_range() {
        let n = 1000;
        assert_eq!(payload_len(Dir::GuestToHost, 0, n), MIN_PAYLOAD);
        assert_eq!(payload_len(Dir::HostToGuest, n - 1, n), MAX_PAYLOAD);
        for seq in 0..n {
            let l = payload_len(Dir::HostToGuest, seq, n);
            assert!((MIN_PAYLOAD..=MAX_PAYLOAD).contains(&l));
        }
    }

    #[test]
    fn payloads_round_trip_and_corruption_is_found() {
        let p = payload(Dir::HostToGuest, 17, 100, 3);
        assert_eq!(check_payload(Dir::HostToGuest, &p, 100), Ok((17, 3)));
        assert!(check_payload(Dir::GuestToHost, &p, 100).is_err());
        assert!(check_payload(Dir::HostToGuest, &p, 99).is_err());
        for k in [0, 5, 13, 16, p.len() - 1] {
            let mut bad = p.clone();
            bad[k] ^= 0x40;
            assert!(
                check_payload(Dir::HostToGuest, &bad, 100).is_err(),
                "byte {k}"
            );
        }
        assert!(check_payload(Dir::HostToGuest, &p[..p.len() - 1], 100).is_err());
    }

    #[test]
    fn udp_frames_parse_and_checksums_hold() {
        let data = payload(Dir::GuestToHost, 0, 10, 0);
        let f = udp_frame(PEER_MAC, GUEST_MAC, GUEST_IP, PEER_IP, 6000, 5001, 7, &data);
        assert_eq!(f.len(), MIN_FRAME, "a 16-byte payload pads to 60");
        let Parsed::Ipv4(ip) = parse(&f) else {
            panic!("not IPv4")
        };
        assert_eq!((ip.src, ip.dst, ip.ttl, ip.id), (GUEST_IP, PEER_IP, 64, 7));
        assert_eq!(parse_udp(&ip), Ok((6000, 5001, &data[..])));
        let mut bad = f.clone();
        bad[14 + 20 + 8 + 3] ^= 1;
        let Parsed::Ipv4(ip) = parse(&bad) else {
            panic!("not IPv4")
        };
        assert!(
            parse_udp(&ip).is_err(),
            "payload corruption breaks the UDP checksum"
        );
        let mut bad = f.clone();
        bad[14 + 8] ^= 1;
        assert!(matches!(parse(&bad), Parsed::Other(..)), "header checksum");
    }

    #[test]
    fn padding_only_on_minimum_frames() {
        let data = payload(Dir::GuestToHost, 1, 10, 0);
        let mut f = udp_frame(PEER_MAC, GUEST_MAC, GUEST_IP, PEER_IP, 1, 2, 0, &data);
        assert!(f.len() > MIN_FRAME);
        f.push(0);
        assert!(matches!(parse(&f), Parsed::Other(..)));
    }

    #[test]
    fn arp_and_icmp_replies() {
        let req = Arp {
            op: 1,
            sha: GUEST_MAC,
            spa: GUEST_IP,
            tha: [0; 6],
            tpa: PEER_IP,
        };
        let r = arp_reply(&req, PEER_MAC, PEER_IP);
        let Parsed::Arp(a) = parse(&r) else {
            panic!("not ARP")
        };
        assert_eq!(
            (a.op, a.sha, a.spa, a.tha, a.tpa),
            (2, PEER_MAC, PEER_IP, GUEST_MAC, GUEST_IP)
        );

        // An echo request built by hand: type 8, id 0x1234, seq 5, 4 data bytes.
        let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 5, 1, 2, 3, 4];
        let c = inet_checksum(0, &icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut f = Vec::new();
        eth_header(&mut f, PEER_MAC, GUEST_MAC, 0x0800);
        ipv4_header(&mut f, GUEST_IP, PEER_IP, 1, icmp.len(), 99);
        f.extend_from_slice(&icmp);
        let f = pad(f);
        let Parsed::Ipv4(ip) = parse(&f) else {
            panic!("not IPv4")
        };
        let reply = icmp_echo_reply(&ip, PEER_MAC).expect("a reply");
        let Parsed::Ipv4(rip) = parse(&reply) else {
            panic!("reply not IPv4")
        };
        assert_eq!(
            (rip.src, rip.dst, rip.dst_mac),
            (PEER_IP, GUEST_IP, GUEST_MAC)
        );
        assert_eq!(rip.l4[0], 0);
        assert_eq!(&rip.l4[4..], &icmp[4..]);
        assert_eq!(inet_checksum(0, rip.l4), 0);
    }

    #[test]
    fn fwd_frames_check_the_incremented_byte() {
        let dst = [0x02, 0, 0, 0, 0, 0x10];
        for seq in [0, 1, 9] {
            let mut f = fwd_frame(seq, 10, dst);
            assert_eq!(f.len(), fwd_len(seq, 10));
            assert!(
                check_fwd_frame(&f, 10, dst).is_err(),
                "unforwarded frame accepted"
            );
            f[1] = f[1].wrapping_add(1);
            assert_eq!(check_fwd_frame(&f, 10, dst), Ok(seq));
            let last = f.len() - 1;
            f[last] ^= 0x80;
            assert!(check_fwd_frame(&f, 10, dst).is_err());
        }
    }

    #[test]
    fn io_forwarded_frames_come_back_unchanged() {
        // testpmd's io mode (the peer's `io` mode, bump 0): the frame exactly as injected.
        let dst = [0x02, 0, 0, 0, 0, 0x01];
        let f = fwd_frame(7, 10, dst);
        assert_eq!(check_sfwd(&f, 10, dst, 0), Ok(7));
        let mut bumped = f.clone();
        bumped[1] = bumped[1].wrapping_add(1);
        assert!(check_sfwd(&bumped, 10, dst, 0).is_err(), "a changed byte 1");
        assert!(
            check_sfwd(&f[..f.len() - 1], 10, dst, 0).is_err(),
            "a short frame"
        );
    }

    #[test]
    fn digest_is_order_independent() {
        let a = payload(Dir::HostToGuest, 0, 2, 0);
        let b = payload(Dir::HostToGuest, 1, 2, 1);
        assert_eq!(
            digest_add(digest_add(0, &a), &b),
            digest_add(digest_add(0, &b), &a)
        );
        assert_eq!(expected_rx_digest(2, 16), digest_add(digest_add(0, &a), &b));
    }

    #[test]
    fn control_fields_and_macs() {
        assert_eq!(
            field("REPORT tx_packets=12 rx_packets=7", "rx_packets"),
            Some(7)
        );
        assert_eq!(field("REPORT tx_packets=12", "packets"), None);
        assert_eq!(
            parse_mac("00:1b:21:0a:0b:0c"),
            Some([0, 0x1b, 0x21, 0x0a, 0x0b, 0x0c])
        );
        assert_eq!(parse_mac("00:1b:21"), None);
        assert_eq!(fmt_mac(&PEER_MAC), "02:00:00:00:00:fe");
        assert_eq!(flow_source(3), ([10, 0, 0, 103], 7003));
    }
}
