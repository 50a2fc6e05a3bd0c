//! UDP/IPv4 test frames: a builder (IPv4 header checksum, RFC 791; UDP checksum over the
//! pseudo-header, RFC 768; both RFC 1071 sums) and a parser that validates what it makes.
//!
//! Written by hand rather than with `etherparse`: the generator rewrites the sequence number of
//! every frame in place and updates the UDP checksum incrementally (RFC 1624), which a
//! serialising builder does not offer; the checksums are checked independently by tshark
//! (`scripts/tshark-check.sh`).
//!
//! Layout of a frame of `size` bytes (without FCS, 60..=1514):
//!
//! ```text
//! 0   Ethernet: dst MAC, src MAC, EtherType 0x0800              (14 bytes)
//! 14  IPv4: 0x45, TOS 0, total length, id 0, DF, TTL 64, UDP, checksum, src, dst   (20 bytes)
//! 34  UDP: src port, dst port, length, checksum (pseudo-header, header, payload)     (8 bytes)
//! 42  payload: 64-bit sequence number (big endian), then fill bytes
//!     (byte at frame offset k is `k as u8`), so a corrupted payload is detected
//! ```

/// Smallest frame (without FCS) the builder makes: the Ethernet minimum.
pub const MIN_FRAME: usize = 60;
/// Largest frame (without FCS): a 1500-byte MTU plus the Ethernet header.
pub const MAX_FRAME: usize = 1514;
/// Offset of the sequence number in the frame.
pub const SEQ_OFFSET: usize = 42;
const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;

/// Addresses and ports of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Destination MAC address.
    pub dst_mac: [u8; 6],
    /// Source MAC address.
    pub src_mac: [u8; 6],
    /// Source IPv4 address.
    pub src_ip: [u8; 4],
    /// Destination IPv4 address.
    pub dst_ip: [u8; 4],
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            dst_mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x02],
            src_mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
            src_ip: [10, 0, 0, 1],
            dst_ip: [10, 0, 0, 2],
            src_port: 42,
            dst_port: 1337,
        }
    }
}

/// The Internet checksum (RFC 1071) of `data`: one's complement of the one's-complement sum of
/// its 16-bit big-endian words (an odd last byte is padded with zero).
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for word in &mut chunks {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes a complete frame of `buf.len()` bytes (60..=1514) for `flow` with sequence number
/// `seq`. Panics if the length is out of range (callers validate sizes first).
pub fn build_udp_frame(buf: &mut [u8], flow: &Flow, seq: u64) {
    let size = buf.len();
    assert!(
        (MIN_FRAME..=MAX_FRAME).contains(&size),
        "frame size {size} out of range"
    );
    buf[0..6].copy_from_slice(&flow.dst_mac);
    buf[6..12].copy_from_slice(&flow.src_mac);
    buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_total = (size - ETH_LEN) as u16;
    let ip = &mut buf[ETH_LEN..ETH_LEN + IP_LEN];
    ip[0] = 0x45; // version 4, 5 words of header
    ip[1] = 0; // DSCP/ECN
    ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
    ip[4..6].copy_from_slice(&0u16.to_be_bytes()); // identification
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&flow.src_ip);
    ip[16..20].copy_from_slice(&flow.dst_ip);
    let checksum = internet_checksum(ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let udp = &mut buf[ETH_LEN + IP_LEN..SEQ_OFFSET];
    udp[0..2].copy_from_slice(&flow.src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&flow.dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&(ip_total - IP_LEN as u16).to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    for (k, byte) in buf.iter_mut().enumerate().skip(SEQ_OFFSET + 8) {
        *byte = k as u8;
    }
    buf[SEQ_OFFSET..SEQ_OFFSET + 8].copy_from_slice(&seq.to_be_bytes());
    let sum = udp_checksum(&buf[ETH_LEN..ETH_LEN + usize::from(ip_total)]);
    buf[40..42].copy_from_slice(&sum.to_be_bytes());
}

/// The UDP checksum (RFC 768) of the IPv4 packet `ip` (header, then the UDP datagram whose
/// checksum field is taken as zero): the pseudo-header of source, destination, protocol 17 and
/// UDP length, then the datagram. A sum of zero is sent as 0xFFFF (zero means "none").
pub fn udp_checksum(ip: &[u8]) -> u16 {
    let udp = &ip[IP_LEN..];
    let mut pseudo = [0u8; 12];
    pseudo[0..8].copy_from_slice(&ip[12..20]);
    pseudo[9] = 17;
    pseudo[10..12].copy_from_slice(&(udp.len() as u16).to_be_bytes());
    let mut sum = ones_sum(&pseudo) + ones_sum(&udp[..6]) + ones_sum(&udp[8..]);
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xFFFF,
        c => c,
    }
}

/// The one's-complement sum of `data`'s 16-bit words, not folded (an odd last byte is the
/// high half of a word).
fn ones_sum(data: &[u8]) -> u32 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for word in &mut chunks {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Overwrites the sequence number of a frame made by [`build_udp_frame`] and updates its UDP
/// checksum incrementally (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m') per changed word), so the
/// frame stays valid without summing its payload again.
#[inline(always)]
pub fn set_seq(frame: &mut [u8], seq: u64) {
    let new = seq.to_be_bytes();
    let old: [u8; 8] = frame[SEQ_OFFSET..SEQ_OFFSET + 8]
        .try_into()
        .unwrap_or([0; 8]);
    frame[SEQ_OFFSET..SEQ_OFFSET + 8].copy_from_slice(&new);
    let hc = u16::from_be_bytes([frame[40], frame[41]]);
    if hc == 0 {
        return; // no checksum in use
    }
    let mut sum = u32::from(!hc);
    for k in (0..8).step_by(2) {
        sum += u32::from(!u16::from_be_bytes([old[k], old[k + 1]]));
        sum += u32::from(u16::from_be_bytes([new[k], new[k + 1]]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    let c = match !(sum as u16) {
        0 => 0xFFFF,
        c => c,
    };
    frame[40..42].copy_from_slice(&c.to_be_bytes());
}

/// What [`parse_udp_frame`] found in a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFrame {
    /// Addresses and ports.
    pub flow: Flow,
    /// The sequence number in the payload.
    pub seq: u64,
    /// IPv4 total length (frame length minus Ethernet header, minus padding).
    pub ip_len: u16,
}

/// Why a frame is not a valid test frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the headers plus the sequence number, or than the IPv4 length says.
    TooShort,
    /// EtherType is not IPv4.
    NotIpv4,
    /// IPv4 version/IHL byte is not 0x45.
    BadIpHeader,
    /// The IPv4 header checksum does not verify.
    BadIpChecksum,
    /// Not UDP.
    NotUdp,
    /// UDP length disagrees with the IPv4 length.
    BadUdpLength,
    /// The UDP checksum (when not zero) does not verify.
    BadUdpChecksum,
    /// A payload fill byte is wrong.
    BadPayload,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::TooShort => "frame too short",
            FrameError::NotIpv4 => "not IPv4",
            FrameError::BadIpHeader => "bad IPv4 version or header length",
            FrameError::BadIpChecksum => "bad IPv4 header checksum",
            FrameError::NotUdp => "not UDP",
            FrameError::BadUdpLength => "UDP length disagrees with IPv4 length",
            FrameError::BadUdpChecksum => "bad UDP checksum",
            FrameError::BadPayload => "payload corrupted",
        })
    }
}

impl std::error::Error for FrameError {}

/// Parses and validates a frame made by [`build_udp_frame`] (trailing padding is allowed).
pub fn parse_udp_frame(frame: &[u8]) -> Result<UdpFrame, FrameError> {
    if frame.len() < SEQ_OFFSET + 8 {
        return Err(FrameError::TooShort);
    }
    if frame[12..14] != [0x08, 0x00] {
        return Err(FrameError::NotIpv4);
    }
    let ip = &frame[ETH_LEN..ETH_LEN + IP_LEN];
    if ip[0] != 0x45 {
        return Err(FrameError::BadIpHeader);
    }
    if internet_checksum(ip) != 0 {
        return Err(FrameError::BadIpChecksum);
    }
    if ip[9] != 17 {
        return Err(FrameError::NotUdp);
    }
    let ip_len = u16::from_be_bytes([ip[2], ip[3]]);
    let end = ETH_LEN + usize::from(ip_len);
    if usize::from(ip_len) < IP_LEN + UDP_LEN + 8 || end > frame.len() {
        return Err(FrameError::TooShort);
    }
    let udp = &frame[ETH_LEN + IP_LEN..SEQ_OFFSET];
    if u16::from_be_bytes([udp[4], udp[5]]) != ip_len - IP_LEN as u16 {
        return Err(FrameError::BadUdpLength);
    }
    if frame[SEQ_OFFSET + 8..end]
        .iter()
        .enumerate()
        .any(|(k, &b)| b != (k + SEQ_OFFSET + 8) as u8)
    {
        return Err(FrameError::BadPayload);
    }
    let udp_sum = u16::from_be_bytes([udp[6], udp[7]]);
    if udp_sum != 0 && udp_checksum(&frame[ETH_LEN..end]) != udp_sum {
        return Err(FrameError::BadUdpChecksum);
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&frame[SEQ_OFFSET..SEQ_OFFSET + 8]);
    let mac = |at: usize| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&frame[at..at + 6]);
        m
    };
    Ok(UdpFrame {
        flow: Flow {
            dst_mac: mac(0),
            src_mac: mac(6),
            src_ip: [ip[12], ip[13], ip[14], ip[15]],
            dst_ip: [ip[16], ip[17], ip[18], ip[19]],
            src_port: u16::from_be_bytes([udp[0], udp[1]]),
            dst_port: u16::from_be_bytes([udp[2], udp[3]]),
        },
        seq: u64::from_be_bytes(seq),
        ip_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_known_vector() {
        // The IPv4 header example from Wikipedia's "IPv4 header checksum" article:
        // 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7 → checksum 0xb861.
        let mut header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&header), 0xb861);
        header[10] = 0xb8;
        header[11] = 0x61;
        assert_eq!(internet_checksum(&header), 0);
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to 0xddf2 → checksum !0xddf2 = 0x220d.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // Odd length: the last byte is the high half of a word.
        assert_eq!(internet_checksum(&[0x12]), !0x1200);
    }

    #[test]
    fn build_then_parse_roundtrip_all_sizes() {
        let flow = Flow {
            src_port: 1000,
            ..Flow::default()
        };
        for size in [60, 61, 64, 128, 1000, 1514] {
            let mut buf = vec![0u8; size];
            build_udp_frame(&mut buf, &flow, 0x0102_0304_0506_0708 + size as u64);
            let parsed = parse_udp_frame(&buf).unwrap();
            assert_eq!(parsed.flow, flow);
            assert_eq!(parsed.seq, 0x0102_0304_0506_0708 + size as u64);
            assert_eq!(usize::from(parsed.ip_len), size - 14);
        }
    }

    #[test]
    fn sixty_byte_frame_layout() {
        let mut buf = [0u8; 60];
        build_udp_frame(&mut buf, &Flow::default(), 7);
        assert_eq!(&buf[12..14], &[0x08, 0x00]);
        assert_eq!(u16::from_be_bytes([buf[16], buf[17]]), 46); // IPv4 total length
        assert_eq!(u16::from_be_bytes([buf[38], buf[39]]), 26); // UDP length
        assert_eq!(&buf[42..50], &7u64.to_be_bytes());
        assert_eq!(internet_checksum(&buf[14..34]), 0);
        // The UDP checksum verifies: pseudo-header + datagram (with its checksum) sum to 0xFFFF.
        let mut pseudo = buf[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 17, 0, 26]);
        pseudo.extend_from_slice(&buf[34..60]);
        assert_ne!(u16::from_be_bytes([buf[40], buf[41]]), 0);
        assert_eq!(internet_checksum(&pseudo), 0);
    }

    #[test]
    fn udp_checksum_known_vector() {
        // 192.168.0.1:1 -> 192.168.0.2:2, UDP length 10, payload "hi" (0x6869):
        // c0a8 + 0001 + c0a8 + 0002 + 0011 + 000a + 0001 + 0002 + 000a + 6869 = 0x1e9e4
        // -> fold 0xe9e5 -> checksum 0x161a.
        let mut ip = [0u8; 30];
        ip[12..16].copy_from_slice(&[192, 168, 0, 1]);
        ip[16..20].copy_from_slice(&[192, 168, 0, 2]);
        ip[20..30].copy_from_slice(&[0, 1, 0, 2, 0, 10, 0xAB, 0xCD, b'h', b'i']);
        assert_eq!(udp_checksum(&ip), 0x161a);
    }

    #[test]
    fn set_seq_updates_the_udp_checksum_incrementally() {
        for size in [60, 61, 333, 1514] {
            let mut buf = vec![0u8; size];
            build_udp_frame(&mut buf, &Flow::default(), 0);
            for seq in [1, 0xFFFF, 0x1_0000, u64::MAX, 42, 0x8000_0000_0000_0001] {
                set_seq(&mut buf, seq);
                let mut fresh = vec![0u8; size];
                build_udp_frame(&mut fresh, &Flow::default(), seq);
                // Equal as one's-complement numbers (0x0000 and 0xFFFF both mean zero; the
                // builder never writes 0x0000).
                assert_eq!(buf, fresh, "size {size} seq {seq:#x}");
                assert_eq!(parse_udp_frame(&buf).unwrap().seq, seq);
            }
        }
    }

    #[test]
    fn padding_is_accepted_and_set_seq_keeps_validity() {
        let mut buf = vec![0u8; 64];
        build_udp_frame(&mut buf[..60], &Flow::default(), 1);
        set_seq(&mut buf, 99);
        assert_eq!(parse_udp_frame(&buf).unwrap().seq, 99);
    }

    #[test]
    fn corruption_is_detected() {
        let mut good = [0u8; 100];
        build_udp_frame(&mut good, &Flow::default(), 5);
        let cases: [(usize, FrameError); 7] = [
            (12, FrameError::NotIpv4),
            (14, FrameError::BadIpHeader),
            (20, FrameError::BadIpChecksum),
            (38, FrameError::BadUdpLength),
            (41, FrameError::BadUdpChecksum),
            (45, FrameError::BadUdpChecksum),
            (90, FrameError::BadPayload),
        ];
        for (at, want) in cases {
            let mut bad = good;
            bad[at] ^= 0x40;
            assert_eq!(parse_udp_frame(&bad), Err(want), "flip at {at}");
        }
        assert_eq!(parse_udp_frame(&good[..49]), Err(FrameError::TooShort));
        // Claiming more IPv4 bytes than the frame has.
        let mut long = good;
        long[16] = 0x05;
        let sum = {
            long[24] = 0;
            long[25] = 0;
            internet_checksum(&long[14..34])
        };
        long[24..26].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse_udp_frame(&long), Err(FrameError::TooShort));
    }
}
