//! Transmit checksum offload: advanced context descriptors (§7.2.3.2.3) and the IXSM / TXSM
//! options of data descriptors (§7.2.5): the device fills in the IPv4 header checksum and the
//! TCP or UDP checksum of a packet, using the context its data descriptor names (IDX).

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
        };
        (idx as usize, ctx)
    }
}

/// 16-bit ones' complement sum of `data` (big-endian words, odd byte padded), folded.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
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
    if ixsm {
        if !ctx.ipv4 {
            return Err("IXSM (IPv4 header checksum) with a context that is not IPv4".into());
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

#[cfg(test)]
mod tests {
    use super::*;

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
