//! A frame in several pool buffers: what a jumbo frame is on receive (one buffer per descriptor
//! of the frame, EOP on the last, datasheet §7.1.6) and a scatter-gather packet is on transmit
//! (one descriptor per segment, §7.2.3.2.4).
//!
//! Zero-copy and allocation-free: a chain is a short fixed-capacity list of [`Packet`]s, each
//! owning its buffer; dropping the chain returns every buffer to its pool.

use crate::mempool::Packet;

/// Most segments (buffers, descriptors) in one [`PacketChain`]: a 9728-byte frame in 1 KB
/// buffers (the smallest SRRCTL.BSIZEPACKET) takes 10, and Tx leaves room for a few header
/// segments. Well below the 40 descriptors after which the datasheet wants an RS bit
/// (TXDCTL, §8.2.3.9.10), which only the last descriptor of a chain carries.
pub const MAX_SEGMENTS: usize = 16;

/// One frame in up to [`MAX_SEGMENTS`] pool buffers, in order. `Send` like its packets.
///
/// ```
/// # use ixgbe_core::{Mempool, PacketChain};
/// # let sim = platform_mock::Sim::new();
/// # let nic = sim.add_nic(platform_mock::NicConfig::default());
/// let pool = Mempool::new(&sim.platform(nic), 8, 2048).unwrap();
/// let mut chain = PacketChain::new();
/// for len in [2048, 100] {
///     let mut p = pool.alloc().unwrap();
///     p.set_len(len).unwrap();
///     chain.push(p).unwrap();
/// }
/// assert_eq!((chain.len(), chain.segments().len()), (2148, 2));
/// let mut flat = [0u8; 4096];
/// assert_eq!(chain.copy_to(&mut flat), 2148);
/// drop(chain); // both buffers go back
/// assert_eq!(pool.free_count(), 8);
/// ```
#[derive(Debug, Default)]
pub struct PacketChain<'a> {
    segments: heapless::Vec<Packet<'a>, MAX_SEGMENTS>,
}

impl<'a> PacketChain<'a> {
    /// An empty chain.
    pub const fn new() -> Self {
        PacketChain {
            segments: heapless::Vec::new(),
        }
    }

    /// A chain of one segment.
    pub fn single(packet: Packet<'a>) -> Self {
        let mut chain = Self::new();
        // An empty chain has room for one.
        let _ = chain.segments.push(packet);
        chain
    }

    /// Appends a segment; gives it back when the chain already has [`MAX_SEGMENTS`].
    pub fn push(&mut self, packet: Packet<'a>) -> Result<(), Packet<'a>> {
        self.segments.push(packet)
    }

    /// Removes and returns the last segment.
    pub fn pop(&mut self) -> Option<Packet<'a>> {
        self.segments.pop()
    }

    /// The segments, first to last.
    pub fn segments(&self) -> &[Packet<'a>] {
        &self.segments
    }

    /// The segments, to change their bytes or lengths.
    pub fn segments_mut(&mut self) -> &mut [Packet<'a>] {
        &mut self.segments
    }

    /// Frame length: the sum of the segments' lengths.
    pub fn len(&self) -> usize {
        self.segments.iter().map(|p| p.len()).sum()
    }

    /// True for a chain without bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame's bytes in order, segment by segment.
    pub fn bytes(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.segments.iter().map(|p| &p[..])
    }

    /// Copies the frame into `out` (as much as fits); returns how many bytes were copied.
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        let mut at = 0;
        for seg in self.bytes() {
            let n = seg.len().min(out.len() - at);
            out[at..at + n].copy_from_slice(&seg[..n]);
            at += n;
            if at == out.len() {
                break;
            }
        }
        at
    }

    /// Appends `data` to the frame: fills the last segment's buffer, then further segments
    /// from `alloc` (each starting empty). Returns how many bytes were appended: fewer than
    /// `data.len()` when `alloc` runs dry or the chain is full.
    pub fn extend_from_slice(
        &mut self,
        mut data: &[u8],
        mut alloc: impl FnMut() -> Option<Packet<'a>>,
    ) -> usize {
        let total = data.len();
        while !data.is_empty() {
            let room = self.segments.last().map_or(0, |p| p.capacity() - p.len());
            if room == 0 {
                if self.segments.is_full() {
                    break;
                }
                let Some(mut p) = alloc() else { break };
                p.set_len(0).ok();
                if p.capacity() == 0 || self.segments.push(p).is_err() {
                    break;
                }
                continue;
            }
            let n = room.min(data.len());
            let Some(last) = self.segments.last_mut() else {
                break;
            };
            let old = last.len();
            // `old + n <= capacity` by the choice of `room`.
            if last.set_len(old + n).is_err() {
                break;
            }
            last[old..].copy_from_slice(&data[..n]);
            data = &data[n..];
        }
        total - data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::fake::FakePlatform;
    use crate::mempool::Mempool;

    #[test]
    fn a_chain_holds_a_frame_across_buffers_and_returns_them() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 32, 1024).unwrap();
        let frame: [u8; 2500] = core::array::from_fn(|k| (k * 7) as u8);
        let mut chain = PacketChain::new();
        assert_eq!(chain.extend_from_slice(&frame, || pool.alloc()), 2500);
        let lens: heapless::Vec<usize, 4> = chain.segments().iter().map(|s| s.len()).collect();
        assert_eq!(&lens[..], &[1024, 1024, 452]);
        let mut out = [0u8; 3000];
        assert_eq!(chain.copy_to(&mut out), 2500);
        assert_eq!(out[..2500], frame[..]);
        let mut short = [0u8; 1500];
        assert_eq!(chain.copy_to(&mut short), 1500);
        assert_eq!(short[..], frame[..1500]);
        assert_eq!(pool.free_count(), 29);
        drop(chain);
        assert_eq!(pool.free_count(), 32);
        // A full chain stops appending and says how much it took.
        let mut chain = PacketChain::new();
        let big = [1u8; 1024 * (MAX_SEGMENTS + 1)];
        assert_eq!(
            chain.extend_from_slice(&big, || pool.alloc()),
            1024 * MAX_SEGMENTS
        );
        assert!(chain.push(pool.alloc().unwrap()).is_err());
    }

    #[test]
    fn chains_are_send() {
        fn send<T: Send>() {}
        send::<PacketChain<'static>>();
    }
}
