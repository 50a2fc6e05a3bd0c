//! Checksum offloads.
//!
//! Receive (§7.1.11, status and error bits of the advanced write-back §7.1.6.2): the 82599 checks
//! the IPv4 header checksum and the TCP or UDP checksum (IPv4 and IPv6) of every frame it
//! parses; RXCSUM has no switch for it (only IPPCSE and PCSD, §8.2.3.7.5, about the fragment
//! checksum).
//!
//! Transmit: advanced context descriptors (§7.2.3.2.3) and the IXSM / TXSM options of data
//! descriptors (§7.2.5): the device fills in the IPv4 header checksum and the TCP or UDP
//! checksum of a packet, using the context its data descriptor names (IDX).

use crate::rss;

/// VP: a VLAN packet whose tag was stripped into the write-back (status bit 3).
pub(crate) const RX_VP: u32 = 1 << 3;
/// UDPCS: the L4 checksum was computed over a UDP datagram (status bit 4).
pub(crate) const RX_UDPCS: u32 = 1 << 4;
/// L4CS (L4I): the TCP or UDP checksum was computed (status bit 5).
pub(crate) const RX_L4CS: u32 = 1 << 5;
/// IPCS: the IPv4 header checksum was computed (status bit 6).
pub(crate) const RX_IPCS: u32 = 1 << 6;
/// L4E (TCPE): the TCP or UDP checksum is wrong (error bit 30 of the status_error dword).
pub(crate) const RX_L4E: u32 = 1 << 30;
/// IPE: the IPv4 header checksum is wrong (error bit 31).
pub(crate) const RX_IPE: u32 = 1 << 31;

fn be16(frame: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([frame[at], frame[at + 1]]))
}

/// The checksum status and error bits the device writes back for `frame` as it came off the
/// wire (one VLAN tag allowed): IPCS (and IPE) for an IPv4 header that is all there, L4CS (and
/// UDPCS, L4E) for a TCP segment or UDP datagram that is not a fragment and whose IP lengths fit
/// the frame. IPv6 extension headers are not walked (no L4 bits then).
///
/// A UDP/IPv4 datagram without a checksum (field 0) gets L4E: the 82599 erratum Linux's ixgbe
/// works around (`__IXGBE_RX_CSUM_UDP_ZERO_ERR`, "UDP frames with a 0 checksum can be marked as
/// checksum errors").
#[cfg(test)]
pub(crate) fn rx_checksum_bits(frame: &[u8]) -> u32 {
    rx_checksum_bits_parsed(frame, &rss::parse(frame)).0
}

/// [`rx_checksum_bits`] for a frame `rss::parse` has already parsed into `p`; with the
/// write-back's fragment field (`rx::fragment_field`: the sum, [`sum16`] from 0, of the IPv4
/// payload `frame[l3 + IHL × 4..l3 + total length]` in bits 31:16, the IP identification in
/// 15:0) when this pass computed that sum (an IPv4 frame that is not a fragment and fits its
/// lengths), folded only when asked for ([`Fragment::field`]).
///
/// The sums run over little-endian words and are compared or byte-swapped once at the end
/// (RFC 1071 §2(B): a ones' complement sum is byte-order independent); the IPv4 addresses are
/// summed once for both the header and the pseudo header. Unit test
/// `le_checksum_pass_equals_the_big_endian_one` compares it with the big-endian three-sum
/// form it replaced (`tests::rx_checksum_bits_parsed_be`).
#[inline(always)]
pub(crate) fn rx_checksum_bits_parsed(frame: &[u8], p: &rss::Parsed) -> (u32, Option<Fragment>) {
    let l3 = p.l3;
    match p.ip {
        4 => {
            let ihl = usize::from(frame[l3] & 0xF) * 4;
            if frame.len() < l3 + ihl {
                return (0, None);
            }
            let mut bits = RX_IPCS;
            // `rss::parse` gave IPv4 only for IHL ≥ 5 and 20 header bytes in the frame. The
            // header's first 12 bytes, its options, and the addresses (shared with the pseudo
            // header), each of constant length but the options.
            let addrs = sum_le(&frame[l3 + 12..l3 + 20], 0);
            let mut head = sum_le(&frame[l3..l3 + 12], addrs);
            if ihl > 20 {
                head = sum_le(&frame[l3 + 20..l3 + ihl], head);
            }
            if !sums_to_ffff(head) {
                bits |= RX_IPE;
            }
            let total = be16(frame, l3 + 2);
            let (Some(l4), true) = (p.l4, total >= ihl && l3 + total <= frame.len()) else {
                return (bits, None); // a fragment, or lengths that do not fit: no L4 check
            };
            // `l4` is `l3 + ihl` (no fragment): the segment is the whole IP payload.
            let seg = &frame[l4..l3 + total];
            let seg_sum = sum_le(seg, 0);
            // The pseudo header: the addresses, protocol and length, as little-endian words
            // (each 16-bit value byte-swapped).
            let len = seg.len() as u16;
            let pseudo = add_c(
                addrs,
                (u64::from(p.proto) << 8) + u64::from(len.swap_bytes()),
            );
            let l4_ok = sums_to_ffff(add_c(pseudo, seg_sum));
            let bits = bits | l4_bits_ok(p.proto, seg, l4_ok, true);
            let id = be16(frame, l3 + 4) as u32;
            (bits, Some(Fragment { sum: seg_sum, id }))
        }
        6 => {
            let Some(l4) = p.l4 else { return (0, None) };
            let end = l4 + be16(frame, l3 + 4);
            if end > frame.len() {
                return (0, None);
            }
            let seg = &frame[l4..end];
            let pseudo = sum16(
                &frame[l3 + 8..l3 + 40],
                u32::from(p.proto) + seg.len() as u32,
            );
            (l4_bits(p.proto, seg, sum16(seg, pseudo), false), None)
        }
        _ => (0, None),
    }
}

/// The IPv4 payload's sum the checksum pass computed, unfolded, and the IP identification:
/// the write-back's fragment field when RXCSUM.PCSD = 0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fragment {
    /// [`sum_le`] of the payload from 0.
    sum: u64,
    id: u32,
}

impl Fragment {
    /// Bits 31:16 the payload's [`sum16`] from 0, bits 15:0 the IP identification.
    pub(crate) fn field(self) -> u32 {
        u32::from(fold_le(self.sum).swap_bytes()) << 16 | self.id
    }
}

/// `a + b` with the end-around carry of a ones' complement sum mod 2^64 − 1.
#[inline(always)]
fn add_c(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

/// The ones' complement sum of `data` as little-endian 16-bit words (odd byte padded), added
/// to `acc`, not folded: mod 2^64 − 1, so congruent mod 0xFFFF to the word-by-word sum, and 0
/// only when `acc` and every word are 0. [`fold_le`] folds it; byte-swapped, that is
/// [`sum16`] of the same data (RFC 1071 §2(B)).
///
/// Sixteen bytes a step, then one eight-byte word, then the last 1..=7 bytes: for data of at
/// least 8 bytes, as the top bytes of its last eight shifted down (one load instead of up to
/// three). That moves each 16-bit word by a multiple of 16 bits (the remainder starts at an
/// offset that is a multiple of 8), and 2^16 ≡ 1 mod 0xFFFF, so the sum stays congruent to
/// the word-by-word one and 0 exactly when it was (unit test
/// `tests::sum_le_is_congruent_to_its_word_by_word_form` against the form it replaced,
/// `tests::sum_le_words`).
#[inline(always)]
fn sum_le(data: &[u8], acc: u64) -> u64 {
    let mut sum = acc;
    let mut rest = data;
    while let Some((w, r)) = rest.split_first_chunk::<16>() {
        let (a, b) = w.split_at(8);
        sum = add_c(sum, u64::from_le_bytes(a.try_into().expect("8 bytes")));
        sum = add_c(sum, u64::from_le_bytes(b.try_into().expect("8 bytes")));
        rest = r;
    }
    if let Some((w, r)) = rest.split_first_chunk::<8>() {
        sum = add_c(sum, u64::from_le_bytes(*w));
        rest = r;
    }
    if rest.is_empty() {
        return sum;
    }
    if let Some(last) = data.last_chunk::<8>() {
        // `rest` is 1..=7 bytes: the top `rest.len()` bytes of the last eight.
        return add_c(sum, u64::from_le_bytes(*last) >> (64 - 8 * rest.len()));
    }
    let mut tail = 0u64;
    if let Some((w, r)) = rest.split_first_chunk::<4>() {
        tail += u64::from(u32::from_le_bytes(*w));
        rest = r;
    }
    if let Some((w, r)) = rest.split_first_chunk::<2>() {
        tail += u64::from(u16::from_le_bytes(*w));
        rest = r;
    }
    if let [b] = rest {
        tail += u64::from(*b);
    }
    add_c(sum, tail)
}

/// Folds a [`sum_le`] to 16 bits: 0 only for 0, otherwise 1..=0xFFFF.
#[inline(always)]
fn fold_le(sum: u64) -> u16 {
    if sum == 0 {
        0
    } else {
        ((sum - 1) % 0xFFFF + 1) as u16
    }
}

/// Whether a [`sum_le`] folds to 0xFFFF (a checksum that verifies), in either byte order
/// (0xFFFF is its own byte swap): a nonzero multiple of 0xFFFF.
#[inline(always)]
fn sums_to_ffff(sum: u64) -> bool {
    sum != 0 && sum.is_multiple_of(0xFFFF)
}

/// The ones' complement sum of two folded sums (each at most 0xFFFF): what [`sum16`] gives
/// over both sums' data (0 only when both are 0). The reference for the receive path's
/// combined pseudo-header sum.
#[cfg(test)]
fn ones_add(a: u32, b: u32) -> u32 {
    let s = a + b;
    (s & 0xFFFF) + (s >> 16)
}

/// L4CS, UDPCS and L4E for a TCP or UDP segment `seg` whose sum with the pseudo header is
/// `sum`.
fn l4_bits(proto: u8, seg: &[u8], sum: u32, ipv4: bool) -> u32 {
    l4_bits_ok(proto, seg, sum == 0xFFFF, ipv4)
}

/// [`l4_bits`] given whether the sum with the pseudo header is 0xFFFF (`ok`).
#[inline(always)]
fn l4_bits_ok(proto: u8, seg: &[u8], ok: bool, ipv4: bool) -> u32 {
    let (min, udp) = match proto {
        6 => (20, false),
        17 => (8, true),
        _ => return 0,
    };
    if seg.len() < min {
        return 0;
    }
    let mut bits = RX_L4CS | if udp { RX_UDPCS } else { 0 };
    let no_checksum = udp && ipv4 && seg[6..8] == [0, 0];
    if no_checksum || !ok {
        bits |= RX_L4E;
    }
    bits
}

/// One of a queue's two offload contexts, as the last context descriptor for it said.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct TxContext {
    pub(crate) valid: bool,
    /// MACLEN (bits 15:9 of `vlan_macip_lens`): bytes before the IP header.
    pub(crate) maclen: usize,
    /// IPLEN (bits 8:0): bytes of the IP header, options included.
    pub(crate) iplen: usize,
    /// TUCMD.IPV4 (bit 10 of `type_tucmd_mlhl`).
    pub(crate) ipv4: bool,
    /// TUCMD.L4T (bits 12:11): 00 UDP, 01 TCP, 10 SCTP, 11 reserved.
    pub(crate) l4t: u8,
    /// VLAN (bits 31:16 of `vlan_macip_lens`): the tag a data descriptor's VLE inserts.
    pub(crate) vlan: u16,
}

impl TxContext {
    /// Decodes a context descriptor's two words; returns the context index (IDX, bits 6:4 of
    /// `mss_l4len_idx`) and the context.
    pub(crate) fn decode(word0: u64, word1: u64) -> (usize, TxContext) {
        let lens = word0 as u32;
        let tucmd = word1 as u32;
        let idx = ((word1 >> 32) as u32 >> 4) & 7;
        let ctx = TxContext {
            valid: true,
            maclen: ((lens >> 9) & 0x7F) as usize,
            iplen: (lens & 0x1FF) as usize,
            ipv4: tucmd & (1 << 10) != 0,
            l4t: ((tucmd >> 11) & 3) as u8,
            vlan: (lens >> 16) as u16,
        };
        (idx as usize, ctx)
    }
}

/// 16-bit ones' complement sum of `data` (big-endian words, odd byte padded) added to `acc`,
/// folded: 0 only when `acc` and every word are 0, otherwise 1..=0xFFFF (RFC 1071).
///
/// Eight bytes at a time with an end-around carry (a ones' complement sum mod 2^64 − 1 is the
/// same sum mod 0xFFFF, which divides it), then folded as the word-by-word loop would.
#[inline(always)]
pub(crate) fn sum16(data: &[u8], acc: u32) -> u32 {
    let mut sum = u64::from(acc);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let (s, carry) = sum.overflowing_add(u64::from_be_bytes(c.try_into().expect("8 bytes")));
        sum = s + u64::from(carry);
    }
    // The last 0..=7 bytes: a 4-byte, a 2-byte and an odd piece, none more than 2^32.
    let mut rest = chunks.remainder();
    let mut tail = 0u64;
    if let Some((w, r)) = rest.split_first_chunk::<4>() {
        tail += u64::from(u32::from_be_bytes(*w));
        rest = r;
    }
    if let Some((w, r)) = rest.split_first_chunk::<2>() {
        tail += u64::from(u16::from_be_bytes(*w));
        rest = r;
    }
    if let [b] = rest {
        tail += u64::from(*b) << 8;
    }
    let (s, carry) = sum.overflowing_add(tail);
    sum = s + u64::from(carry);
    // What folding `(x & 0xFFFF) + (x >> 16)` until x <= 0xFFFF gives, in closed form.
    if sum == 0 {
        0
    } else {
        ((sum - 1) % 0xFFFF + 1) as u32
    }
}

/// Fills in the checksums `ixsm` (IPv4 header) and `txsm` (TCP/UDP) ask for, per `ctx`. The
/// L4 checksum field holds the pseudo-header sum software put there (§7.2.5.1); the device adds
/// the L4 header and payload and stores the complement. Returns why it could not.
pub(crate) fn insert_checksums(
    frame: &mut [u8],
    ctx: &TxContext,
    ixsm: bool,
    txsm: bool,
) -> Result<(), String> {
    if !ctx.valid {
        return Err("checksum offload asked with no context descriptor for its IDX".into());
    }
    let l3 = ctx.maclen;
    let l4 = ctx.maclen + ctx.iplen;
    if ctx.maclen < 14 || ctx.iplen < 20 || l4 > frame.len() {
        return Err(format!(
            "context MACLEN {} / IPLEN {} do not fit a {}-byte frame",
            ctx.maclen,
            ctx.iplen,
            frame.len()
        ));
    }
    // MACLEN and IPLEN must describe this packet (§7.2.3.2.3): an IP header at MACLEN, IPLEN
    // bytes long for IPv4 (IHL), at least 40 for IPv6. TUCMD.IPV4 itself matters only for the
    // IPv4 header checksum (and TSO): Linux's ixgbe leaves it 0 for TCP/UDP checksums of IPv4
    // packets (ixgbe_tx_csum sets only L4T), and the silicon computes them right.
    let version = frame[l3] >> 4;
    let ihl = usize::from(frame[l3] & 0xF) * 4;
    let fits = match version {
        4 => ihl == ctx.iplen,
        6 => ctx.iplen >= 40,
        _ => false,
    };
    if !fits {
        return Err(format!(
            "context MACLEN {} / IPLEN {} do not describe the header at MACLEN (IP version {version})",
            ctx.maclen, ctx.iplen
        ));
    }
    if ixsm {
        if !ctx.ipv4 || version != 4 {
            return Err("IXSM (IPv4 header checksum) without an IPv4 context and header".into());
        }
        frame[l3 + 10..l3 + 12].fill(0);
        let c = !(sum16(&frame[l3..l4], 0) as u16);
        frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    if txsm {
        let field = match ctx.l4t {
            0 => 6,  // UDP
            1 => 16, // TCP
            t => {
                return Err(format!(
                    "TXSM with L4T {t:#b} (SCTP CRC is not modelled; 11b is reserved)"
                ))
            }
        };
        if l4 + field + 2 > frame.len() {
            return Err(format!(
                "L4 checksum field beyond a {}-byte frame",
                frame.len()
            ));
        }
        let mut c = !(sum16(&frame[l4..], 0) as u16);
        if ctx.l4t == 0 && c == 0 {
            c = 0xFFFF; // UDP: a computed 0 is sent as all ones (RFC 768)
        }
        frame[l4 + field..l4 + field + 2].copy_from_slice(&c.to_be_bytes());
    }
    Ok(())
}

/// DCMD.VLE (§7.2.3.2.4): inserts the context's VLAN tag after the MAC addresses, with the
/// TPID `vt` (DMATXCTL.VT, §8.2.3.9.2). The frame in host memory is untagged, so MACLEN and the
/// checksums describe it without the tag (they are applied first).
pub(crate) fn insert_vlan(frame: &mut Vec<u8>, ctx: &TxContext, vt: u16) -> Result<(), String> {
    if !ctx.valid {
        return Err("VLE (VLAN insertion) with no context descriptor for its IDX".into());
    }
    if frame.len() < 12 {
        return Err(format!("VLE on a {}-byte packet", frame.len()));
    }
    let mut tag = [0u8; 4];
    tag[..2].copy_from_slice(&vt.to_be_bytes());
    tag[2..].copy_from_slice(&ctx.vlan.to_be_bytes());
    frame.splice(12..12, tag);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The receive checksum pass as it was before `simspeed4`: big-endian words, three sums
    /// (header, segment, pseudo header on the segment's folded sum), the fragment sum folded.
    /// [`rx_checksum_bits`] for a frame `rss::parse` has already parsed into `p`; with the
    /// write-back's fragment field (`rx::fragment_field`: the sum, [`sum16`] from 0, of the IPv4
    /// payload `frame[l3 + IHL × 4..l3 + total length]` in bits 31:16, the IP identification in
    /// 15:0) when this pass computed that sum (an IPv4 frame that is not a fragment and fits its
    /// lengths).
    pub(crate) fn rx_checksum_bits_parsed_be(frame: &[u8], p: &rss::Parsed) -> (u32, Option<u32>) {
        let l3 = p.l3;
        match p.ip {
            4 => {
                let ihl = usize::from(frame[l3] & 0xF) * 4;
                if frame.len() < l3 + ihl {
                    return (0, None);
                }
                let mut bits = RX_IPCS;
                // The usual header without options as a slice of constant length: the sum's loop
                // unrolled by the compiler (the same function, the same sum).
                let header = if ihl == 20 {
                    sum16(&frame[l3..l3 + 20], 0)
                } else {
                    sum16(&frame[l3..l3 + ihl], 0)
                };
                if header != 0xFFFF {
                    bits |= RX_IPE;
                }
                let total = be16(frame, l3 + 2);
                let (Some(l4), true) = (p.l4, total >= ihl && l3 + total <= frame.len()) else {
                    return (bits, None); // a fragment, or lengths that do not fit: no L4 check
                };
                // `l4` is `l3 + ihl` (no fragment): the segment is the whole IP payload.
                let seg = &frame[l4..l3 + total];
                let seg_sum = sum16(seg, 0);
                // The pseudo header (addresses, protocol, length) summed onto the segment's sum:
                // `ones_add(seg_sum, pseudo sum)` with one fold less (unit test
                // `pseudo_header_summed_onto_the_segment_sum_equals_ones_add`).
                let l4_sum = sum16(
                    &frame[l3 + 12..l3 + 20],
                    u32::from(p.proto) + seg.len() as u32 + seg_sum,
                );
                let bits = bits | l4_bits(p.proto, seg, l4_sum, true);
                let id = be16(frame, l3 + 4) as u32;
                (bits, Some(seg_sum << 16 | id))
            }
            6 => {
                let Some(l4) = p.l4 else { return (0, None) };
                let end = l4 + be16(frame, l3 + 4);
                if end > frame.len() {
                    return (0, None);
                }
                let seg = &frame[l4..end];
                let pseudo = sum16(
                    &frame[l3 + 8..l3 + 40],
                    u32::from(p.proto) + seg.len() as u32,
                );
                (l4_bits(p.proto, seg, sum16(seg, pseudo), false), None)
            }
            _ => (0, None),
        }
    }

    /// An IPv4/UDP frame whose UDP checksum field holds the pseudo-header sum, as Linux leaves it
    /// with CHECKSUM_PARTIAL.
    fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        let ip_len = (20 + 8 + payload.len()) as u16;
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&5678u16.to_be_bytes());
        let udp_len = (8 + payload.len()) as u16;
        f[38..40].copy_from_slice(&udp_len.to_be_bytes());
        let pseudo = sum16(&f[26..34], 17 + u32::from(udp_len)) as u16;
        f[40..42].copy_from_slice(&pseudo.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// `sum_le` as it was (eight bytes a step, the tail as 4-, 2- and 1-byte words): the
    /// reference for the shifted tail.
    fn sum_le_words(data: &[u8], acc: u64) -> u64 {
        let mut sum = acc;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            sum = add_c(sum, u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut rest = chunks.remainder();
        let mut tail = 0u64;
        if let Some((w, r)) = rest.split_first_chunk::<4>() {
            tail += u64::from(u32::from_le_bytes(*w));
            rest = r;
        }
        if let Some((w, r)) = rest.split_first_chunk::<2>() {
            tail += u64::from(u16::from_le_bytes(*w));
            rest = r;
        }
        if let [b] = rest {
            tail += u64::from(*b);
        }
        add_c(sum, tail)
    }

    /// The sixteen-byte steps and the shifted tail give a sum congruent mod 0xFFFF to the
    /// old form's, 0 exactly when it is 0: the same fold, the same verdicts. Every length to
    /// 100 bytes at every start offset in a word, random, all-zero, all-ones and sparse
    /// contents, random and zero accumulators.
    #[test]
    fn sum_le_is_congruent_to_its_word_by_word_form() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let reps = if cfg!(miri) { 2 } else { 200 };
        let mut buf = [0u8; 112];
        for rep in 0..reps {
            for b in buf.iter_mut() {
                *b = match rep % 4 {
                    0 => rnd() as u8,
                    1 => 0,
                    2 => 0xFF,
                    _ => u8::from(rnd() % 16 == 0) * rnd() as u8,
                };
            }
            let acc = match rep % 3 {
                0 => 0,
                1 => rnd(),
                _ => u64::MAX - rnd() % 4,
            };
            for at in 0..8 {
                for len in 0..=100 {
                    let d = &buf[at..at + len];
                    let (new, old) = (sum_le(d, acc), sum_le_words(d, acc));
                    assert_eq!(new % 0xFFFF, old % 0xFFFF, "rep {rep} at {at} len {len}");
                    assert_eq!(new == 0, old == 0, "rep {rep} at {at} len {len}");
                    assert_eq!(fold_le(new), fold_le(old));
                    assert_eq!(sums_to_ffff(new), sums_to_ffff(old));
                }
            }
        }
    }

    /// The word-by-word definition (RFC 1071) that [`sum16`] computes eight bytes at a time.
    fn sum16_words(data: &[u8], mut acc: u32) -> u32 {
        let mut chunks = data.chunks_exact(2);
        for c in &mut chunks {
            acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [b] = chunks.remainder() {
            acc += u32::from(*b) << 8;
        }
        while acc > 0xFFFF {
            acc = (acc & 0xFFFF) + (acc >> 16);
        }
        acc
    }

    #[test]
    fn sum16_agrees_with_the_word_by_word_sum() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut data = Vec::new();
        for len in 0..200 {
            data.clear();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.push((x >> 24) as u8);
            }
            for acc in [0, 1, 0xFFFF, 0x1_0000, 17 + len as u32, 0x00FF_FFFF] {
                assert_eq!(
                    sum16(&data, acc),
                    sum16_words(&data, acc),
                    "{len} bytes, acc {acc:#x}"
                );
            }
        }
        // The two zeros of ones' complement stay apart: all zeros sum to 0, all ones to 0xFFFF,
        // and carries out of every position wrap around.
        assert_eq!(sum16(&[0; 64], 0), 0);
        assert_eq!(sum16(&[0xFF; 64], 0), 0xFFFF);
        assert_eq!(sum16(&[0xFF; 63], 0), sum16_words(&[0xFF; 63], 0));
        assert_eq!(sum16(&[0xFF; 8], 1), sum16_words(&[0xFF; 8], 1));
        // Sums of two pieces add up to the sum of the whole, zeros included.
        for split in 0..=data.len() / 2 {
            let (a, b) = data.split_at(2 * split);
            let whole = sum16(&data, 0x1234);
            assert_eq!(ones_add(sum16(a, 0), sum16(b, 0x1234)), whole);
        }
        assert_eq!(ones_add(sum16(&[0; 6], 0), sum16(&[0; 4], 0)), 0);
        assert_eq!(ones_add(0xFFFF, 0xFFFF), 0xFFFF);
        assert_eq!(ones_add(0xFFFF, 0), 0xFFFF);
    }

    /// The little-endian checksum pass gives the big-endian one's bits and fragment field on
    /// random IPv4 (and IPv6) frames: TCP, UDP and other protocols, header options, fragments,
    /// lengths that fit, that do not and cut frames, checksums that verify (so both zeros of
    /// ones' complement and 0xFFFF sums occur) and single corrupted bytes, all-zero and
    /// all-ones payloads.
    #[test]
    fn le_checksum_pass_equals_the_big_endian_one() {
        let mut x = 0x5DEE_CE66_D1CE_4E5Bu64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut checked = [0usize; 3]; // frames with a verifying IP header, L4 checksum, field
        for _ in 0..if cfg!(miri) { 300 } else { 60_000 } {
            let r = rnd();
            let tagged = r & 1 != 0;
            let v6 = r % 7 == 0;
            let ihl = if r >> 3 & 3 == 0 {
                5 + (r >> 5) as usize % 11
            } else {
                5
            };
            let proto = [6u8, 17, 17, 1][(r >> 9) as usize & 3];
            let fill = r >> 11 & 7;
            let plen = (r >> 14) as usize % 90;
            let l3 = if tagged { 18 } else { 14 };
            let hlen = if v6 { 40 } else { 4 * ihl };
            let l4min = if proto == 6 { 20 } else { 8 };
            let seg_len = l4min + plen;
            let mut f = vec![0u8; l3 + hlen + seg_len];
            for b in f.iter_mut() {
                *b = match fill {
                    0 => 0,
                    1 => 0xFF,
                    _ => rnd() as u8,
                };
            }
            if tagged {
                f[12..14].copy_from_slice(&[0x81, 0x00]);
                f[16..18].copy_from_slice(&if v6 { [0x86, 0xDD] } else { [0x08, 0x00] });
            } else {
                f[12..14].copy_from_slice(&if v6 { [0x86, 0xDD] } else { [0x08, 0x00] });
            }
            let l4 = l3 + hlen;
            let csum_at = l4 + if proto == 6 { 16 } else { 6 };
            if v6 {
                f[l3] = 0x60 | (f[l3] & 0xF);
                f[l3 + 4..l3 + 6].copy_from_slice(&(seg_len as u16).to_be_bytes());
                f[l3 + 6] = proto;
            } else {
                f[l3] = 0x40 | ihl as u8;
                f[l3 + 2..l3 + 4].copy_from_slice(&((hlen + seg_len) as u16).to_be_bytes());
                if r >> 20 & 3 != 0 {
                    f[l3 + 6] &= 0x80; // no fragment (most frames)
                    f[l3 + 7] = 0;
                }
                f[l3 + 9] = proto;
                if r >> 22 & 3 != 0 {
                    // A verifying header checksum.
                    f[l3 + 10..l3 + 12].fill(0);
                    let c = !(sum16(&f[l3..l4], 0) as u16);
                    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
                }
            }
            if r >> 24 & 3 != 0 && csum_at + 2 <= f.len() {
                // A verifying L4 checksum (or UDP's zero, then the erratum's L4E).
                f[csum_at..csum_at + 2].fill(0);
                let pseudo = if v6 {
                    sum16(&f[l3 + 8..l3 + 40], u32::from(proto) + seg_len as u32)
                } else {
                    sum16(&f[l3 + 12..l3 + 20], u32::from(proto) + seg_len as u32)
                };
                let c = !(sum16(&f[l4..], pseudo) as u16);
                f[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
            }
            match r >> 26 & 7 {
                0 => {
                    let k = (r >> 30) as usize % f.len();
                    f[k] ^= 1 << (r >> 40 & 7); // one corrupted bit anywhere
                }
                1 => f.truncate((r >> 30) as usize % (f.len() + 1)), // cut short
                2 => f.extend((0..(r >> 30) % 9).map(|_| rnd() as u8)), // padded
                3 if !v6 => {
                    // An IP length that does not fit, or is below the header's.
                    let bad = (r >> 30) as u16 % 200;
                    f[l3 + 2..l3 + 4].copy_from_slice(&bad.to_be_bytes());
                }
                _ => {}
            }
            let p = rss::parse(&f);
            let (bits, frag) = rx_checksum_bits_parsed(&f, &p);
            let (bits_be, frag_be) = tests::rx_checksum_bits_parsed_be(&f, &p);
            assert_eq!(bits, bits_be, "{f:02x?}");
            assert_eq!(frag.map(Fragment::field), frag_be, "{f:02x?}");
            checked[0] += usize::from(bits & (RX_IPCS | RX_IPE) == RX_IPCS);
            checked[1] += usize::from(bits & (RX_L4CS | RX_L4E) == RX_L4CS);
            checked[2] += usize::from(frag.is_some());
        }
        assert!(checked.iter().all(|&c| c > 30), "{checked:?}");
    }

    /// Summing the pseudo header with the segment's folded sum as the start value gives what
    /// adding the two folded sums gives, the two zeros included.
    #[test]
    fn pseudo_header_summed_onto_the_segment_sum_equals_ones_add() {
        let mut x = 0x1234_5678_9ABC_DEF1u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut cases: Vec<([u8; 8], u32, u32)> = vec![
            ([0; 8], 0, 0),
            ([0; 8], 0, 0xFFFF),
            ([0xFF; 8], 0, 0),
            ([0xFF; 8], 0xFFFF + 17, 0xFFFF),
            ([0; 8], 17 + 8, 0),
        ];
        for _ in 0..if cfg!(miri) { 2_000 } else { 100_000 } {
            let r = rnd();
            let addr = match r % 4 {
                0 => [0xFF; 8],
                1 => [0; 8],
                _ => rnd().to_be_bytes(),
            };
            let len = (r >> 8) as u32 & 0xFFFF;
            let proto = [6, 17][(r >> 40) as usize & 1];
            let seg_sum = match r >> 41 & 3 {
                0 => 0,
                1 => 0xFFFF,
                _ => 1 + (r >> 44) as u32 % 0xFFFF,
            };
            cases.push((addr, proto + len, seg_sum));
        }
        for (addr, acc, seg_sum) in cases {
            assert_eq!(
                sum16(&addr, acc + seg_sum),
                ones_add(seg_sum, sum16(&addr, acc)),
                "{addr:?} {acc:#x} {seg_sum:#x}"
            );
        }
    }

    #[test]
    fn udp_and_ip_checksums_verify_after_insertion() {
        let mut f = udp_frame(b"hello, checksum offload!");
        let (idx, ctx) = TxContext::decode(
            (14 << 9) | 20,
            (1 << 10) | (0b0010 << 20) | (1 << 29) | (1 << 36),
        );
        assert_eq!(
            (idx, ctx.maclen, ctx.iplen, ctx.ipv4, ctx.l4t),
            (1, 14, 20, true, 0)
        );
        insert_checksums(&mut f, &ctx, true, true).unwrap();
        // The IPv4 header sums to 0xFFFF; the UDP datagram with its pseudo header too.
        assert_eq!(sum16(&f[14..34], 0), 0xFFFF);
        let udp_len = (f.len() - 34) as u32;
        assert_eq!(sum16(&f[34..], sum16(&f[26..34], 17 + udp_len)), 0xFFFF);
    }

    #[test]
    fn linux_contexts_leave_tucmd_ipv4_clear_for_l4_checksums_of_ipv4() {
        // ixgbe_tx_csum writes only L4T (UDP = 0) and MACLEN/IPLEN: no TUCMD.IPV4.
        let mut f = udp_frame(b"as Linux's ixgbe asks");
        let (_, ctx) = TxContext::decode((14 << 9) | 20, 0b0010 << 20 | (1 << 29));
        assert!(!ctx.ipv4);
        insert_checksums(&mut f, &ctx, false, true).unwrap();
        let udp_len = (f.len() - 34) as u32;
        assert_eq!(sum16(&f[34..], sum16(&f[26..34], 17 + udp_len)), 0xFFFF);
        // The IPv4 header checksum does need an IPv4 context.
        assert!(insert_checksums(&mut f, &ctx, true, false).is_err());
    }

    #[test]
    fn rx_bits_report_what_the_checksums_say() {
        let mut f = udp_frame(b"hello, receive checksum offload");
        let (_, ctx) = TxContext::decode((14 << 9) | 20, 1 << 10);
        insert_checksums(&mut f, &ctx, true, true).unwrap();
        let good = RX_IPCS | RX_L4CS | RX_UDPCS;
        assert_eq!(rx_checksum_bits(&f), good);
        let mut bad_l4 = f.clone();
        bad_l4[41] ^= 0x10;
        assert_eq!(rx_checksum_bits(&bad_l4), good | RX_L4E);
        let mut bad_ip = f.clone();
        bad_ip[25] ^= 1;
        assert_eq!(rx_checksum_bits(&bad_ip), good | RX_IPE);
        let mut none = f.clone();
        none[40..42].fill(0);
        assert_eq!(
            rx_checksum_bits(&none),
            good | RX_L4E,
            "erratum: no checksum flagged"
        );
        // Tagged: the same bits. An IP length beyond the frame: the header only.
        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&f[12..]);
        assert_eq!(rx_checksum_bits(&tagged), good);
        let mut long = f.clone();
        long.truncate(f.len() - 1);
        assert_eq!(rx_checksum_bits(&long), RX_IPCS);
        assert_eq!(rx_checksum_bits(&f[..30]), 0, "truncated header");
        assert_eq!(rx_checksum_bits(&[0u8; 60]), 0, "not IP");
    }

    #[test]
    fn malformed_contexts_are_refused() {
        let mut f = udp_frame(b"x");
        let none = TxContext::default();
        assert!(insert_checksums(&mut f, &none, false, true).is_err());
        let (_, mut ctx) = TxContext::decode((14 << 9) | 20, 1 << 10);
        ctx.iplen = 400;
        assert!(insert_checksums(&mut f, &ctx, true, false).is_err());
        let (_, sctp) = TxContext::decode((14 << 9) | 20, (1 << 10) | (0b10 << 11));
        assert!(insert_checksums(&mut f, &sctp, false, true).is_err());
    }
}
