//! Receive-side scaling: the Toeplitz hash and the packet parser that feeds it (datasheet §7).

/// Toeplitz hash of `input` with a 40-byte key (key byte 0 leftmost, most significant bit first).
///
/// For every set input bit `i` (bit 0 = MSB of byte 0) the 32-bit window of the key starting at
/// bit `i` is XORed into the result. The hash is linear in the input, so it is the XOR of each
/// input byte's share, which a table per key holds (36 positions x 256 values, built on the
/// first use of a key on a thread): one look-up per byte instead of eight data-dependent
/// branches, which cost a mispredicted branch per other input bit. Inputs longer than 36
/// bytes (not an RSS input) are hashed bit by bit.
#[inline(never)]
pub fn toeplitz_hash(key: &[u8; 40], input: &[u8]) -> u32 {
    // The hit path alone here (a small frame, few registers to save); building a table and
    // long inputs out of line.
    let hit = TABLE.with(|cell| {
        let cached = cell.try_borrow().ok()?;
        let table = cached.as_ref().filter(|t| same_key(&t.key, key))?;
        (input.len() <= TABLE_BYTES).then(|| table.hash(input))
    });
    match hit {
        Some(h) => h,
        None => toeplitz_miss(key, input),
    }
}

/// [`toeplitz_hash`] when this thread's table is for another key (or none yet), or the input
/// is longer than a table covers.
#[cold]
#[inline(never)]
fn toeplitz_miss(key: &[u8; 40], input: &[u8]) -> u32 {
    if input.len() > TABLE_BYTES {
        return toeplitz_bitwise(key, input);
    }
    TABLE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cached) => cached.insert(Table::new(key)).hash(input),
        Err(_) => toeplitz_bitwise(key, input),
    })
}

/// `a == b` as five 64-bit compares (the array comparison calls memcmp, per hash).
#[inline(always)]
fn same_key(a: &[u8; 40], b: &[u8; 40]) -> bool {
    let word = |k: &[u8; 40], i: usize| {
        u64::from_ne_bytes([
            k[i],
            k[i + 1],
            k[i + 2],
            k[i + 3],
            k[i + 4],
            k[i + 5],
            k[i + 6],
            k[i + 7],
        ])
    };
    (0..40).step_by(8).all(|i| word(a, i) == word(b, i))
}

/// Longest input the table covers: IPv6 source and destination addresses and both ports.
const TABLE_BYTES: usize = 36;

/// Each input byte's share of the hash for one key: `shares[i][b]` is the hash of an input that
/// is `b` at byte `i` and zero elsewhere.
struct Table {
    key: [u8; 40],
    shares: Box<[[u32; 256]; TABLE_BYTES]>,
}

impl Table {
    /// The share of `N` input bytes at positions `at..at + N` (`N` a multiple of 4, `at + N` at
    /// most [`TABLE_BYTES`]).
    #[inline(always)]
    fn hash_at<const N: usize>(&self, bytes: &[u8; N], at: usize) -> u32 {
        // Four bytes per load, each byte taken from the register as its look-up needs it:
        // twelve byte loads first, as the compiler scheduled them, made `rx_frame` spill.
        const { assert!(N.is_multiple_of(4), "whole 4-byte words") };
        let s = &self.shares;
        let mut h = 0;
        let mut k = 0;
        while k + 4 <= N {
            let w = u32::from_le_bytes([bytes[k], bytes[k + 1], bytes[k + 2], bytes[k + 3]]);
            h ^= s[at + k][(w & 0xFF) as usize]
                ^ s[at + k + 1][(w >> 8 & 0xFF) as usize]
                ^ s[at + k + 2][(w >> 16 & 0xFF) as usize]
                ^ s[at + k + 3][(w >> 24) as usize];
            k += 4;
        }
        h
    }

    /// The hash of `input` (at most [`TABLE_BYTES`] long): the XOR of its bytes' shares.
    #[inline(always)]
    fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.shares.iter())
            .fold(0, |h, (&b, row)| h ^ row[usize::from(b)])
    }

    fn new(key: &[u8; 40]) -> Table {
        let mut shares = Box::new([[0u32; 256]; TABLE_BYTES]);
        for (i, row) in shares.iter_mut().enumerate() {
            // The share of each single bit (bit `j`, MSB first: the definition's key window
            // from bit 8i + j), then each byte value from a smaller one: `b` is `b` without
            // its lowest set bit, plus that bit. 256 XORs per byte instead of 8 × 256 (the
            // table is built for every new key, and slowly under Miri).
            let bits: [u32; 8] = core::array::from_fn(|j| key_window(key, 8 * i + j));
            for b in 1..256usize {
                let low = b.trailing_zeros() as usize;
                row[b] = row[b & (b - 1)] ^ bits[7 - low];
            }
        }
        Table { key: *key, shares }
    }
}

/// The 32 bits of `key` from bit `p` on (bit 0 = MSB of byte 0; zeros past its end): what an
/// input bit at position `p` adds to the Toeplitz hash.
fn key_window(key: &[u8; 40], p: usize) -> u32 {
    let mut w = 0u64;
    for k in 0..8 {
        w = w << 8 | u64::from(key.get(p / 8 + k).copied().unwrap_or(0));
    }
    (w << (p % 8) >> 32) as u32
}

std::thread_local! {
    /// The table of the last key hashed on this thread (each lane's thread keeps its own).
    static TABLE: std::cell::RefCell<Option<Table>> = const { std::cell::RefCell::new(None) };
}

/// [`toeplitz_hash`] bit by bit, as the definition reads: what the table is built from, and the
/// reference it is tested against.
///
/// For every set input bit `i` (bit 0 = MSB of byte 0) the 32-bit window of the key starting at
/// bit `i` is XORed into the result.
fn toeplitz_bitwise(key: &[u8; 40], input: &[u8]) -> u32 {
    let mut result = 0u32;
    // Window = key bits [i, i + 32); kept in the top of a u64 and shifted one bit per input bit.
    let mut window: u64 = u64::from(u32::from_be_bytes([key[0], key[1], key[2], key[3]])) << 32
        | u64::from(u32::from_be_bytes([key[4], key[5], key[6], key[7]]));
    for (next_key, &byte) in (8usize..).zip(input) {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                result ^= (window >> 32) as u32;
            }
            window <<= 1;
        }
        // After each byte, refill the low 8 bits that were shifted out of the 64-bit window.
        let kb = key.get(next_key).copied().unwrap_or(0);
        window |= u64::from(kb);
    }
    result
}

/// RSS type codes written to the descriptor (bits 3:0).
pub(crate) mod rss_type {
    pub const TCP_IPV4: u32 = 1;
    pub const IPV4: u32 = 2;
    pub const TCP_IPV6: u32 = 3;
    pub const IPV6: u32 = 5;
    pub const UDP_IPV4: u32 = 7;
    pub const UDP_IPV6: u32 = 8;
}

/// What the parser found in a frame.
#[derive(Default, Clone, Copy)]
pub(crate) struct Parsed {
    /// Descriptor packet-type bits (already shifted to bits 16:4).
    pub pkt_type: u32,
    /// 0 = not IP, 4 = IPv4, 6 = IPv6.
    pub ip: u8,
    /// Offset of the L3 header.
    pub l3: usize,
    /// Offset of the L4 header, when the L4 header can be parsed (not a fragment).
    pub l4: Option<usize>,
    /// IP protocol / next header.
    pub proto: u8,
    /// An untagged IPv4 frame without options and with an L4 header: the IPv4 RSS input
    /// (addresses, then ports) is bytes 26..38, all inside the frame. The same as `ip == 4 &&
    /// l3 == 14 && l4 == Some(34)`, kept as one flag because testing that per frame cost the
    /// 2-queue receive loop 5 instructions more.
    pub v4_plain: bool,
}

/// Parses Ethernet (+ one VLAN tag), IPv4/IPv6 and TCP/UDP.
pub(crate) fn parse(frame: &[u8]) -> Parsed {
    let mut p = Parsed::default();
    if frame.len() < 14 {
        return p;
    }
    let mut et = u16::from_be_bytes([frame[12], frame[13]]);
    let mut l3 = 14;
    if et == 0x8100 && frame.len() >= 18 {
        et = u16::from_be_bytes([frame[16], frame[17]]);
        l3 = 18;
    }
    p.l3 = l3;
    match et {
        0x0800 if frame.len() >= l3 + 20 => {
            let ihl = usize::from(frame[l3] & 0xF) * 4;
            if frame[l3] >> 4 != 4 || ihl < 20 {
                return p;
            }
            p.ip = 4;
            p.pkt_type |= 1 << 4;
            p.proto = frame[l3 + 9];
            let frag = u16::from_be_bytes([frame[l3 + 6], frame[l3 + 7]]) & 0x3FFF;
            if frag == 0 && frame.len() >= l3 + ihl + 4 {
                p.l4 = Some(l3 + ihl);
                p.v4_plain = l3 == 14 && ihl == 20;
            }
        }
        0x86DD if frame.len() >= l3 + 40 => {
            p.ip = 6;
            p.pkt_type |= 1 << 6;
            p.proto = frame[l3 + 6];
            if frame.len() >= l3 + 40 + 4 {
                p.l4 = Some(l3 + 40);
            }
        }
        _ => return p,
    }
    if p.l4.is_some() {
        match p.proto {
            6 => p.pkt_type |= 1 << 8,
            17 => p.pkt_type |= 1 << 9,
            _ => {}
        }
    }
    p
}

/// Computes (hash, RSS type) for a frame under the MRQC field enables; `None` when no enabled
/// hash type applies. The receive path uses [`Rss::hash`], the same selection over a table
/// kept with the NIC; this one serves [`crate::Sim::rss_queue`] and the tests.
pub(crate) fn rss_hash(key: &[u8; 40], mrqc: u32, frame: &[u8], p: &Parsed) -> Option<(u32, u32)> {
    select(mrqc, frame, p, ByKey(key))
}

/// A Toeplitz hash of an RSS input: addresses (`A` bytes, source then destination) and, if the
/// L4 type is used, the ports (source then destination).
trait HashInput: Copy {
    fn hash<const A: usize>(self, addrs: &[u8; A], ports: Option<&[u8; 4]>) -> u32;
}

/// [`toeplitz_hash`] of the input copied together.
#[derive(Clone, Copy)]
struct ByKey<'a>(&'a [u8; 40]);

impl HashInput for ByKey<'_> {
    #[inline(always)]
    fn hash<const A: usize>(self, addrs: &[u8; A], ports: Option<&[u8; 4]>) -> u32 {
        let mut input = [0u8; TABLE_BYTES];
        input[..A].copy_from_slice(addrs);
        match ports {
            Some(ports) => {
                input[A..A + 4].copy_from_slice(ports);
                toeplitz_hash(self.0, &input[..A + 4])
            }
            None => toeplitz_hash(self.0, &input[..A]),
        }
    }
}

impl HashInput for &Table {
    /// Each byte's share at its position in the input, read from the frame (no copy).
    #[inline(always)]
    fn hash<const A: usize>(self, addrs: &[u8; A], ports: Option<&[u8; 4]>) -> u32 {
        let h = self.hash_at(addrs, 0);
        match ports {
            Some(ports) => h ^ self.hash_at(ports, A),
            None => h,
        }
    }
}

/// The hash input MRQC's field enables select for a parsed frame (§7.1.2.8): the source and
/// destination addresses (8 bytes for IPv4, 32 for IPv6) and the source and destination ports
/// if the frame's L4 type (TCP or UDP) is enabled, else the addresses alone if the IP type
/// is. `None` when no enabled type applies.
#[inline(always)]
fn select(mrqc: u32, frame: &[u8], p: &Parsed, h: impl HashInput) -> Option<(u32, u32)> {
    use crate::regs::*;
    use rss_type::*;
    // Per version, so that the input has a constant length (a variable one was a call to
    // memmove per frame, 1.7 % of a 2-queue run, and a loop over the table).
    match p.ip {
        4 => select_in::<8>(
            frame,
            p,
            p.l3 + 12,
            [mrqc & MRQC_TCP_IPV4, mrqc & MRQC_UDP_IPV4, mrqc & MRQC_IPV4].map(|b| b != 0),
            [TCP_IPV4, UDP_IPV4, IPV4],
            h,
        ),
        6 => select_in::<32>(
            frame,
            p,
            p.l3 + 8,
            [mrqc & MRQC_TCP_IPV6, mrqc & MRQC_UDP_IPV6, mrqc & MRQC_IPV6].map(|b| b != 0),
            [TCP_IPV6, UDP_IPV6, IPV6],
            h,
        ),
        _ => None,
    }
}

/// [`select`] for `A`-byte addresses at `addr_off`: with the ports if the L4 type is enabled
/// (`en`: TCP, UDP, IP), else the addresses alone if IP is.
#[inline(always)]
fn select_in<const A: usize>(
    frame: &[u8],
    p: &Parsed,
    addr_off: usize,
    en: [bool; 3],
    types: [u32; 3],
    h: impl HashInput,
) -> Option<(u32, u32)> {
    let addrs: &[u8; A] = frame[addr_off..addr_off + A].try_into().expect("A bytes");
    if let Some(l4) = p.l4 {
        let use_l4 = match p.proto {
            6 if en[0] => Some(types[0]),
            17 if en[1] => Some(types[1]),
            _ => None,
        };
        if let Some(t) = use_l4 {
            let ports: &[u8; 4] = frame[l4..l4 + 4].try_into().expect("4 bytes");
            return Some((h.hash(addrs, Some(ports)), t));
        }
    }
    if en[2] {
        return Some((h.hash(addrs, None), types[2]));
    }
    None
}

/// One NIC's RSS set-up as the receive path uses it (each lane's NIC has its own): the key's
/// table and RETA decoded, rebuilt from the registers on the first frame after software wrote
/// RSSRK or RETA, a reset or a change of lane ([`Rss::dirty`]). No key is read, copied or
/// compared per frame.
///
/// Two memos on top ([`Rss::select`]), both keyed on everything their result depends on:
/// - the hash input MRQC's field enables choose for each packet type (`plans`, for the
///   enables in `plans_for`; rebuilt when MRQC's enables differ from those);
/// - the hash of recent IPv4 inputs (`memo`: the 12 input bytes, addresses and ports, and
///   their hash, direct-mapped by the input), cleared whenever the table is rebuilt for a new
///   key. A hit costs a 12-byte compare instead of twelve look-ups: a source sends few flows.
pub(crate) struct Rss {
    /// RSSRK, RETA or the lane changed since [`Rss::refresh`].
    pub(crate) dirty: bool,
    /// The table of RSSRK's key (None before the first refresh).
    table: Option<Table>,
    /// RETA entry `e`: its queue (bits 3:0), bit 7 set when another lane owns the queue.
    reta: [u8; 128],
    /// MRQC's field enables (`& MRQC_FIELDS`) that `plans` were made for; `u32::MAX`: none.
    plans_for: u32,
    /// Per packet type (descriptor bits 9:4 of [`Parsed::pkt_type`]): the RSS type (bits 3:0,
    /// 0 = no hash), [`PLAN_PORTS`] and [`PLAN_V6`].
    plans: [u8; 64],
    /// Recent IPv4 hash inputs and their hash under `table`'s key.
    memo: Box<[Memo; MEMO_ENTRIES]>,
}

/// One input of [`Rss::memo`]: the IPv4 addresses (frame bytes in order, as a little-endian
/// word), the ports (0 when the input has none: zero bytes add nothing to a Toeplitz hash, so
/// the hash of the addresses alone is that of the addresses and four zero bytes) and the
/// hash. All zero is a true entry for every key (the hash of zeros is 0), so a cleared memo
/// needs no valid bit.
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct Memo {
    addrs: u64,
    ports: u32,
    hash: u32,
}

/// log2 of the entries in [`Rss::memo`].
const MEMO_BITS: u32 = 8;
const MEMO_ENTRIES: usize = 1 << MEMO_BITS;

/// The MRQC bits that choose an RSS input: the six field enables.
const MRQC_FIELDS: u32 = {
    use crate::regs::*;
    MRQC_TCP_IPV4 | MRQC_IPV4 | MRQC_IPV6 | MRQC_TCP_IPV6 | MRQC_UDP_IPV4 | MRQC_UDP_IPV6
};
/// A plan's input has the ports after the addresses.
const PLAN_PORTS: u8 = 0x10;
/// A plan's input has IPv6 addresses.
const PLAN_V6: u8 = 0x20;

impl Default for Rss {
    fn default() -> Self {
        Rss {
            dirty: true,
            table: None,
            reta: [0; 128],
            plans_for: u32::MAX,
            plans: [0; 64],
            memo: Box::new([Memo::default(); MEMO_ENTRIES]),
        }
    }
}

/// Bit 7 of a decoded RETA entry ([`Rss::entry`]): another lane owns the entry's queue.
pub(crate) const RETA_FOREIGN: u8 = 0x80;

impl Rss {
    /// Rebuilds the table (if the key changed) and the decoded RETA from the registers
    /// (`reg(offset)`), for lane `lane.0` of `lane.1`.
    #[cold]
    #[inline(never)]
    pub(crate) fn refresh(&mut self, reg: impl Fn(u32) -> u32, lane: (u16, u16)) {
        use crate::regs::{RETA, RSSRK};
        let mut key = [0u8; 40];
        for k in 0..10 {
            key[4 * k..4 * k + 4].copy_from_slice(&reg(RSSRK + 4 * k as u32).to_le_bytes());
        }
        if self.table.as_ref().is_none_or(|t| t.key != key) {
            self.table = Some(Table::new(&key));
            // The memo's hashes were for the old key.
            self.memo.fill(Memo::default());
        }
        for (e, entry) in self.reta.iter_mut().enumerate() {
            let q = ((reg(RETA + 4 * (e as u32 / 4)) >> (8 * (e % 4))) & 0xF) as u16;
            let foreign = lane.1 > 1 && q % lane.1 != lane.0;
            *entry = q as u8 | if foreign { RETA_FOREIGN } else { 0 };
        }
        self.dirty = false;
    }

    /// [`rss_hash`] by this NIC's table, reading the input from the frame (no copy). Only
    /// after [`Rss::refresh`] (`dirty` false). The definition [`Rss::select`] is held to.
    #[cfg(any(debug_assertions, test))]
    pub(crate) fn hash(&self, mrqc: u32, frame: &[u8], p: &Parsed) -> Option<(u32, u32)> {
        select(mrqc, frame, p, self.table.as_ref()?)
    }

    /// RETA entry `h & 0x7F` decoded: the queue (bits 3:0) and [`RETA_FOREIGN`].
    #[inline(always)]
    pub(crate) fn entry(&self, h: u32) -> u8 {
        self.reta[(h & 0x7F) as usize]
    }

    /// Queue selection for a frame: (hash, RSS type, [`Rss::entry`] of the hash), or `None`
    /// when no enabled hash type applies; what [`Rss::hash`] and [`Rss::entry`] give, by the
    /// memos. Only after [`Rss::refresh`] (`dirty` false). Debug builds compare every
    /// result with theirs.
    #[inline(always)]
    pub(crate) fn select(&mut self, mrqc: u32, frame: &[u8], p: &Parsed) -> Option<(u32, u32, u8)> {
        if self.plans_for != mrqc & MRQC_FIELDS {
            self.plan(mrqc);
        }
        self.select_in_run(mrqc, frame, p)
    }

    /// [`Rss::select`] for a frame of a run whose first frame went through it with `mrqc`
    /// (no register written since: the set-up is fresh and the plans are for `mrqc`'s
    /// enables), without checking either again. Debug builds check both, and compare the
    /// result with the definition's.
    #[inline(always)]
    pub(crate) fn select_in_run(
        &mut self,
        mrqc: u32,
        frame: &[u8],
        p: &Parsed,
    ) -> Option<(u32, u32, u8)> {
        debug_assert!(!self.dirty && self.plans_for == mrqc & MRQC_FIELDS);
        let got = self.select_planned(frame, p);
        #[cfg(debug_assertions)]
        {
            let want = self
                .hash(mrqc, frame, p)
                .map(|(h, t)| (h, t, self.entry(h)));
            assert!(got == want, "memoised RSS selection {got:x?} != {want:x?}");
        }
        got
    }

    /// [`Rss::select`] once `plans` are for MRQC's enables.
    #[inline(always)]
    fn select_planned(&mut self, frame: &[u8], p: &Parsed) -> Option<(u32, u32, u8)> {
        let plan = self.plans[(p.pkt_type >> 4 & 0x3F) as usize];
        let t = u32::from(plan & 0xF);
        if t == 0 {
            return None;
        }
        let h = if plan & PLAN_V6 == 0 {
            let (addrs, ports) = if p.v4_plain && plan & PLAN_PORTS != 0 {
                // The common layout (no VLAN tag, no IP options): addresses and ports are
                // bytes 26..38, read with one bounds check.
                let input: &[u8; 12] = frame.get(26..38)?.try_into().ok()?;
                let (addrs, ports) = input.split_first_chunk::<8>()?;
                let ports: &[u8; 4] = ports.try_into().ok()?;
                (u64::from_le_bytes(*addrs), u32::from_le_bytes(*ports))
            } else {
                // The parser saw 20 header bytes; the ports only for an L4 offset.
                let at = p.l3 + 12;
                let addrs = u64::from_le_bytes(frame.get(at..at + 8)?.try_into().ok()?);
                let ports = if plan & PLAN_PORTS != 0 {
                    let l4 = p.l4?;
                    u32::from_le_bytes(frame.get(l4..l4 + 4)?.try_into().ok()?)
                } else {
                    0
                };
                (addrs, ports)
            };
            self.hash_v4(addrs, ports)
        } else {
            let table = self.table.as_ref()?;
            let at = p.l3 + 8;
            let addrs: &[u8; 32] = frame.get(at..at + 32)?.try_into().ok()?;
            let h = table.hash_at(addrs, 0);
            if plan & PLAN_PORTS != 0 {
                let l4 = p.l4?;
                let ports: &[u8; 4] = frame.get(l4..l4 + 4)?.try_into().ok()?;
                h ^ table.hash_at(ports, 32)
            } else {
                h
            }
        };
        Some((h, t, self.entry(h)))
    }

    /// The hash of an IPv4 input (addresses and ports as [`Memo`] keeps them), from the memo.
    #[inline(always)]
    fn hash_v4(&mut self, addrs: u64, ports: u32) -> u32 {
        let i = memo_index(addrs, ports);
        let m = &self.memo[i];
        if m.addrs == addrs && m.ports == ports {
            return m.hash;
        }
        self.memo_miss(i, addrs, ports)
    }

    /// [`Rss::hash_v4`] for an input the memo does not hold: by the table, then kept.
    #[inline(never)]
    fn memo_miss(&mut self, i: usize, addrs: u64, ports: u32) -> u32 {
        let Some(table) = self.table.as_ref() else {
            return 0;
        };
        let hash = table.hash_at(&addrs.to_le_bytes(), 0) ^ table.hash_at(&ports.to_le_bytes(), 8);
        self.memo[i] = Memo { addrs, ports, hash };
        hash
    }

    /// The plans for MRQC's field enables in `mrqc`: for each packet type, what [`select`]
    /// chooses for a frame of that type.
    #[cold]
    #[inline(never)]
    fn plan(&mut self, mrqc: u32) {
        use crate::regs::*;
        use rss_type::*;
        for (i, plan) in self.plans.iter_mut().enumerate() {
            let pkt_type = (i as u32) << 4;
            // The parser's type bits: IPv4 (4), IPv6 (6), TCP (8) and UDP (9), the last two
            // only with an L4 header.
            let (v4, v6) = (pkt_type & 1 << 4 != 0, pkt_type & 1 << 6 != 0);
            let (tcp, udp) = (pkt_type & 1 << 8 != 0, pkt_type & 1 << 9 != 0);
            let en = |bit: u32| mrqc & bit != 0;
            *plan = match (v4, v6) {
                (true, false) if tcp && !udp && en(MRQC_TCP_IPV4) => TCP_IPV4 as u8 | PLAN_PORTS,
                (true, false) if udp && !tcp && en(MRQC_UDP_IPV4) => UDP_IPV4 as u8 | PLAN_PORTS,
                (true, false) if en(MRQC_IPV4) => IPV4 as u8,
                (false, true) if tcp && !udp && en(MRQC_TCP_IPV6) => {
                    TCP_IPV6 as u8 | PLAN_PORTS | PLAN_V6
                }
                (false, true) if udp && !tcp && en(MRQC_UDP_IPV6) => {
                    UDP_IPV6 as u8 | PLAN_PORTS | PLAN_V6
                }
                (false, true) if en(MRQC_IPV6) => IPV6 as u8 | PLAN_V6,
                _ => 0,
            };
        }
        self.plans_for = mrqc & MRQC_FIELDS;
    }
}

/// The [`Rss::memo`] entry of an IPv4 input: a multiplicative hash of its bits (the flows of
/// a source differ in a few address and port bits, which the product carries to the top).
#[inline(always)]
fn memo_index(addrs: u64, ports: u32) -> usize {
    ((addrs ^ u64::from(ports) << 24).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - MEMO_BITS))
        as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_the_bitwise_hash_for_any_key_and_input() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Fewer keys under Miri: each builds a table.
        for _ in 0..if cfg!(miri) { 2 } else { 20 } {
            let mut key = [0u8; 40];
            key.iter_mut().for_each(|k| *k = next() as u8);
            for len in [0usize, 1, 4, 8, 12, 32, 36, 37, 40] {
                for _ in 0..20 {
                    let input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                    assert_eq!(
                        toeplitz_hash(&key, &input),
                        toeplitz_bitwise(&key, &input),
                        "{key:x?} {input:x?}"
                    );
                }
            }
        }
    }

    /// Every entry of a key's table is the definition's hash of its byte alone at its
    /// position: all 36 positions and 256 values, for random keys and the Microsoft
    /// verification key of §7.1.2.8.3 (under Miri the last position of that key: the shares
    /// take one definition hash each).
    #[test]
    fn every_share_is_the_hash_of_its_byte_alone() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        // The verification key (the one the driver programs).
        let mut keys = vec![[
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ]];
        for _ in 0..if cfg!(miri) { 0 } else { 4 } {
            let mut key = [0u8; 40];
            for k in key.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *k = seed as u8;
            }
            keys.push(key);
        }
        let positions: Vec<usize> = if cfg!(miri) {
            vec![TABLE_BYTES - 1]
        } else {
            (0..TABLE_BYTES).collect()
        };
        for key in &keys {
            let table = Table::new(key);
            for &i in &positions {
                for b in 0..256usize {
                    let mut input = [0u8; TABLE_BYTES];
                    input[i] = b as u8;
                    assert_eq!(
                        table.shares[i][b],
                        toeplitz_bitwise(key, &input[..=i]),
                        "{key:x?} byte {i} = {b:#x}"
                    );
                }
            }
        }
    }

    /// [`toeplitz_bitwise`] of the input copied together: the definition, for [`select`].
    #[derive(Clone, Copy)]
    struct ByBits<'a>(&'a [u8; 40]);

    impl HashInput for ByBits<'_> {
        fn hash<const A: usize>(self, addrs: &[u8; A], ports: Option<&[u8; 4]>) -> u32 {
            let mut input = addrs.to_vec();
            input.extend(ports.into_iter().flatten());
            toeplitz_bitwise(self.0, &input)
        }
    }

    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// A random frame for RSS: IPv4 or IPv6 (or ARP), with or without a VLAN tag, TCP, UDP or
    /// GRE, sometimes an IPv4 fragment or options, sometimes cut short.
    fn random_frame(next: &mut impl FnMut() -> u64) -> Vec<u8> {
        let r = next();
        let vlan = r & 1 != 0;
        let v6 = r & 2 != 0;
        let proto = [6u8, 17, 47, 6, 17][(r >> 2) as usize % 5];
        let l3 = if vlan { 18 } else { 14 };
        let ihl = if r >> 5 & 7 == 0 { 6 } else { 5 };
        let hdr = if v6 { 40 } else { 4 * ihl };
        let mut f: Vec<u8> = (0..l3 + hdr + 30).map(|_| next() as u8).collect();
        if vlan {
            f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        }
        let et: u16 = match r >> 8 & 15 {
            0 => 0x0806,
            _ if v6 => 0x86DD,
            _ => 0x0800,
        };
        f[l3 - 2..l3].copy_from_slice(&et.to_be_bytes());
        if v6 {
            f[l3] = 0x60;
            f[l3 + 6] = proto;
        } else {
            f[l3] = 0x40 | ihl as u8;
            f[l3 + 9] = proto;
            // Mostly not a fragment (offset 0, MF clear), sometimes one.
            if r >> 12 & 3 != 0 {
                f[l3 + 6] &= 0xC0;
                f[l3 + 7] = 0;
            }
        }
        if r >> 14 & 7 == 0 {
            // Cut short: somewhere in the headers or the ports.
            let len = (l3 + next() as usize % (hdr + 6)).min(f.len());
            f.truncate(len);
        }
        f
    }

    /// `v4_plain` says exactly when the IPv4 RSS input is bytes 26..38 of the frame: untagged
    /// IPv4, a 20-byte header, not a fragment, and the ports inside the frame.
    #[test]
    fn v4_plain_is_an_untagged_optionless_ipv4_frame_with_its_ports() {
        let mut next = xorshift(0x5EED_F1A7);
        let (mut plain, mut other) = (0, 0);
        let frames = if cfg!(miri) { 500 } else { 5000 };
        for _ in 0..frames {
            let f = random_frame(&mut next);
            let p = parse(&f);
            let want = f.len() >= 38
                && f[12..14] == [0x08, 0x00]
                && f[14] == 0x45
                && u16::from_be_bytes([f[20], f[21]]) & 0x3FFF == 0;
            assert_eq!(p.v4_plain, want, "{f:02x?}");
            if want {
                assert_eq!((p.ip, p.l3, p.l4), (4, 14, Some(34)));
                plain += 1;
            } else {
                other += 1;
            }
        }
        assert!(
            plain > frames / 10 && other > frames / 10,
            "{plain} {other}"
        );
    }

    #[test]
    fn the_nic_s_table_selects_and_hashes_as_the_definition_for_random_keys_and_frames() {
        use crate::regs::{RETA, RSSRK};
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..if cfg!(miri) { 2 } else { 40 } {
            let mut regs = [0u32; 0x10000 / 4];
            for k in 0..10 {
                regs[((RSSRK + 4 * k) / 4) as usize] = next() as u32;
            }
            for k in 0..32 {
                regs[((RETA + 4 * k) / 4) as usize] = next() as u32;
            }
            let lanes = 1 + next() as u16 % 4;
            let lane = next() as u16 % lanes;
            let mut rss = Rss::default();
            rss.refresh(|off| regs[(off / 4) as usize], (lane, lanes));
            assert!(!rss.dirty);
            let mut key = [0u8; 40];
            for k in 0..10 {
                key[4 * k..4 * k + 4]
                    .copy_from_slice(&regs[((RSSRK + 4 * k as u32) / 4) as usize].to_le_bytes());
            }
            for h in 0..128u32 {
                let q = (regs[((RETA + 4 * (h / 4)) / 4) as usize] >> (8 * (h % 4))) & 0xF;
                let e = rss.entry(h | (next() as u32) << 7);
                assert_eq!(u32::from(e & 0xF), q);
                assert_eq!(e & RETA_FOREIGN != 0, q as u16 % lanes != lane);
            }
            for _ in 0..if cfg!(miri) { 20 } else { 500 } {
                let f = random_frame(&mut next);
                let p = parse(&f);
                // The six field enables (bits 16 to 23, 18 and 19 reserved) at random.
                let mrqc = 1 | (next() as u32 & 0xF3) << 16;
                let want = select(mrqc, &f, &p, ByBits(&key));
                assert_eq!(rss.hash(mrqc, &f, &p), want, "{key:x?} {mrqc:x} {f:x?}");
                assert_eq!(
                    rss_hash(&key, mrqc, &f, &p),
                    want,
                    "{key:x?} {mrqc:x} {f:x?}"
                );
            }
        }
    }

    /// The memoised selection ([`Rss::select`]: the plans per packet type and the memo of
    /// recent IPv4 inputs) against [`select`] over the bit-by-bit definition and the RETA
    /// registers, for random keys, RETAs, lanes and MRQC enables written between frames (as
    /// the register path does: RSSRK or RETA marks the set-up dirty, MRQC not), the frames
    /// drawn from a pool of random flows small or large enough for the memo to hit or collide.
    #[test]
    fn the_memoised_selection_is_the_definition_with_key_reta_and_mrqc_written_between_frames() {
        use crate::regs::{RETA, RSSRK};
        let mut next = xorshift(0xD1B5_4A32_D192_ED03);
        let (mut hits, mut frames) = (0usize, 0usize);
        for _ in 0..if cfg!(miri) { 2 } else { 12 } {
            let mut regs = [0u32; 0x10000 / 4];
            let write_random = |regs: &mut [u32], next: &mut dyn FnMut() -> u64| {
                // A key word (sometimes the value it had), or a RETA word.
                let off = if next() & 1 == 0 {
                    RSSRK + 4 * (next() % 10) as u32
                } else {
                    RETA + 4 * (next() % 32) as u32
                };
                if !next().is_multiple_of(4) {
                    regs[(off / 4) as usize] = next() as u32;
                }
            };
            for _ in 0..64 {
                write_random(&mut regs, &mut next);
            }
            let lanes = 1 + next() as u16 % 4;
            let lane = next() as u16 % lanes;
            let mut rss = Rss::default();
            // Every enable at first (most frames hashed), then at random.
            let mut mrqc = 1 | 0xF3 << 16;
            // A pool of flows: few (the memo keeps them all) or more than its entries (not
            // under Miri: its few frames would hardly repeat).
            let sizes = [1, 8, 40, 600];
            let pool: Vec<Vec<u8>> = (0..sizes[next() as usize % if cfg!(miri) { 2 } else { 4 }])
                .map(|_| random_frame(&mut next))
                .collect();
            for _ in 0..if cfg!(miri) { 150 } else { 3000 } {
                match next() % 64 {
                    0 => {
                        write_random(&mut regs, &mut next);
                        rss.dirty = true;
                    }
                    1 => mrqc = 1 | (next() as u32 & 0xF3) << 16,
                    // Every enable, so that most frames are hashed.
                    2 => mrqc = 1 | 0xF3 << 16,
                    _ => {}
                }
                if rss.dirty {
                    rss.refresh(|off| regs[(off / 4) as usize], (lane, lanes));
                }
                let f = &pool[next() as usize % pool.len()];
                let p = parse(f);
                let mut key = [0u8; 40];
                for k in 0..10 {
                    key[4 * k..4 * k + 4].copy_from_slice(
                        &regs[((RSSRK + 4 * k as u32) / 4) as usize].to_le_bytes(),
                    );
                }
                let want = select(mrqc, f, &p, ByBits(&key)).map(|(h, t)| {
                    let e = h & 0x7F;
                    let q = (regs[((RETA + 4 * (e / 4)) / 4) as usize] >> (8 * (e % 4))) & 0xF;
                    let foreign = q as u16 % lanes != lane;
                    (h, t, q as u8 | if foreign { RETA_FOREIGN } else { 0 })
                });
                // Whether the memo holds this frame's IPv4 input already.
                let held = want.is_some() && p.ip == 4 && {
                    let at = p.l3 + 12;
                    let addrs = u64::from_le_bytes(f[at..at + 8].try_into().unwrap());
                    let ports = match (want.unwrap().1, p.l4) {
                        (rss_type::TCP_IPV4 | rss_type::UDP_IPV4, Some(l4)) => {
                            u32::from_le_bytes(f[l4..l4 + 4].try_into().unwrap())
                        }
                        _ => 0,
                    };
                    let m = &rss.memo[memo_index(addrs, ports)];
                    (m.addrs, m.ports) == (addrs, ports)
                };
                assert_eq!(rss.select(mrqc, f, &p), want, "{key:x?} {mrqc:x} {f:x?}");
                hits += usize::from(held);
                frames += 1;
            }
        }
        assert!(hits > frames / 4, "{hits} memo hits of {frames} frames");
    }

    #[test]
    fn a_refresh_keeps_the_table_of_an_unchanged_key_and_rebuilds_for_a_new_one() {
        use crate::regs::RSSRK;
        let mut regs = [0u32; 0x10000 / 4];
        let mut rss = Rss::default();
        assert!(rss
            .hash(1 | crate::regs::MRQC_IPV4, &[], &Parsed::default())
            .is_none());
        rss.refresh(|off| regs[(off / 4) as usize], (0, 1));
        let first = rss.table.as_ref().map(|t| &*t.shares as *const _);
        rss.refresh(|off| regs[(off / 4) as usize], (0, 1));
        assert_eq!(rss.table.as_ref().map(|t| &*t.shares as *const _), first);
        regs[(RSSRK / 4) as usize] = 0x8000_0000;
        rss.refresh(|off| regs[(off / 4) as usize], (0, 1));
        let t = rss.table.as_ref().unwrap();
        assert_eq!(t.key[3], 0x80);
        assert_eq!(
            t.hash(&[0, 0, 0, 1]),
            toeplitz_bitwise(&t.key, &[0, 0, 0, 1])
        );
    }

    /// An Ethernet frame of IP version `v` and protocol `proto` whose addresses are bytes 1..
    /// (source then destination) and whose ports are 0xA1A2 and 0xB1B2.
    fn frame(v: u8, proto: u8) -> (Vec<u8>, Vec<u8>) {
        let (et, hdr, addr_off, alen) = if v == 4 {
            (0x0800u16, 20, 12, 8)
        } else {
            (0x86DD, 40, 8, 32)
        };
        let mut f = vec![0u8; 14 + hdr + 8 + 18];
        f[12..14].copy_from_slice(&et.to_be_bytes());
        if v == 4 {
            f[14] = 0x45;
            f[14 + 9] = proto;
        } else {
            f[14] = 0x60;
            f[14 + 6] = proto;
        }
        let addrs: Vec<u8> = (1..=alen as u8).collect();
        f[14 + addr_off..14 + addr_off + alen].copy_from_slice(&addrs);
        f[14 + hdr..14 + hdr + 4].copy_from_slice(&[0xA1, 0xA2, 0xB1, 0xB2]);
        (f, addrs)
    }

    #[test]
    fn rss_hashes_the_addresses_and_ports_each_enabled_type_selects() {
        use crate::regs::*;
        let key: [u8; 40] = core::array::from_fn(|k| (k as u8).wrapping_mul(29) ^ 0x6D);
        let ports = [0xA1, 0xA2, 0xB1, 0xB2];
        let all =
            MRQC_TCP_IPV4 | MRQC_UDP_IPV4 | MRQC_IPV4 | MRQC_TCP_IPV6 | MRQC_UDP_IPV6 | MRQC_IPV6;
        for (v, proto, l4_en, l4_type, ip_en, ip_type) in [
            (
                4,
                17,
                MRQC_UDP_IPV4,
                rss_type::UDP_IPV4,
                MRQC_IPV4,
                rss_type::IPV4,
            ),
            (
                4,
                6,
                MRQC_TCP_IPV4,
                rss_type::TCP_IPV4,
                MRQC_IPV4,
                rss_type::IPV4,
            ),
            (
                6,
                17,
                MRQC_UDP_IPV6,
                rss_type::UDP_IPV6,
                MRQC_IPV6,
                rss_type::IPV6,
            ),
            (
                6,
                6,
                MRQC_TCP_IPV6,
                rss_type::TCP_IPV6,
                MRQC_IPV6,
                rss_type::IPV6,
            ),
        ] {
            let (f, addrs) = frame(v, proto);
            let p = parse(&f);
            let with_ports = [addrs.clone(), ports.to_vec()].concat();
            let h_l4 = toeplitz_bitwise(&key, &with_ports);
            let h_ip = toeplitz_bitwise(&key, &addrs);
            assert_eq!(
                rss_hash(&key, all, &f, &p),
                Some((h_l4, l4_type)),
                "v{v} {proto}"
            );
            assert_eq!(
                rss_hash(&key, l4_en, &f, &p),
                Some((h_l4, l4_type)),
                "v{v} {proto}"
            );
            // Only the IP type enabled: the addresses alone.
            assert_eq!(
                rss_hash(&key, ip_en, &f, &p),
                Some((h_ip, ip_type)),
                "v{v} {proto}"
            );
            assert_eq!(
                rss_hash(&key, all & !l4_en, &f, &p),
                Some((h_ip, ip_type)),
                "v{v} {proto}"
            );
            assert_eq!(
                rss_hash(&key, all & !l4_en & !ip_en, &f, &p),
                None,
                "v{v} {proto}"
            );
        }
        // Not IP: no hash whatever is enabled.
        let (mut f, _) = frame(4, 17);
        f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(rss_hash(&key, all, &f, &parse(&f)), None);
    }
}
