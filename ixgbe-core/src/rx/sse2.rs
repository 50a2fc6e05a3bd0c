//! Four receive write-backs checked at once with SSE2, which every x86-64 CPU has (DPDK's
//! ixgbe vector path checks four at a time too, with SSE4.1); built where the target enables
//! SSE2 (not for kernel targets such as x86_64-unknown-none, nor under Miri).
//!
//! [`decode_rx`](crate::descriptors::decode_rx) stays the reference: [`Good4::lengths`]
//! accepts four descriptors exactly when `decode_rx` calls all four good frames, and gives
//! their lengths (a property test below compares both on random write-backs). Anything else
//! goes to the scalar loop, which decides descriptor by descriptor.

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_and_si128, _mm_castps_si128, _mm_castsi128_ps, _mm_cmpeq_epi32,
    _mm_cmpgt_epi32, _mm_loadu_si128, _mm_movemask_ps, _mm_set1_epi32, _mm_set_epi64x,
    _mm_setzero_si128, _mm_shuffle_ps, _mm_unpackhi_epi32, _mm_unpacklo_epi32,
};

use crate::descriptors::{RX_CHECKED, RX_GOOD};
use crate::mempool::Packet;

/// The sign bit of a 32-bit lane.
const SIGN: u32 = 1 << 31;

/// The check's constants, in vector registers for the whole receive loop.
#[derive(Clone, Copy)]
pub(crate) struct Good4 {
    status_mask: __m128i,
    status_good: __m128i,
    len_mask: __m128i,
    /// `buf_size` with its sign bit flipped: `len - 1 < buf_size` unsigned is the signed
    /// compare of both sides with their sign bits flipped (SSE2 compares signed only).
    len_limit: __m128i,
}

impl Good4 {
    /// The check for buffers of `buf_size` bytes.
    #[inline(always)]
    pub(crate) fn new(buf_size: u32) -> Self {
        // SAFETY: this module is built only for targets that enable SSE2, so the intrinsics'
        // target feature is present; they only compute on registers.
        unsafe {
            Good4 {
                status_mask: _mm_set1_epi32(RX_CHECKED as i32),
                status_good: _mm_set1_epi32(RX_GOOD as i32),
                len_mask: _mm_set1_epi32(0xFFFF),
                len_limit: _mm_set1_epi32((buf_size ^ SIGN) as i32),
            }
        }
    }

    /// The lengths of four write-backs (their second words, in order) when all four are good
    /// frames: DD and EOP set, RXE clear, `0 < len <= buf_size`.
    #[inline(always)]
    #[cfg(test)]
    pub(crate) fn lengths(&self, w: [u64; 4]) -> Option<[u16; 4]> {
        let len = self.lengths_x4(w)?;
        // SAFETY: any 16 bytes are a valid [u16; 8]; lane j's length is in its low half.
        let h: [u16; 8] = unsafe { core::mem::transmute(len) };
        Some([h[0], h[2], h[4], h[6]])
    }

    /// For four write-backs that are all good frames: the words of their four packets (buffer
    /// index `indices[j]`, the length, no offload flags: [`Packet`]'s layout), built two to a
    /// register, and the lengths one per 32-bit lane, for [`LenSum`].
    #[inline(always)]
    pub(crate) fn metas(&self, w: [u64; 4], indices: [u32; 4]) -> Option<([u64; 4], __m128i)> {
        const { assert!(Packet::META_LEN_SHIFT == 32) };
        let len = self.lengths_x4(w)?;
        // SAFETY: as in `new`: the target has SSE2; the load reads the four indices of a local
        // array (unaligned load), the rest works on registers; any 32 bytes are valid u64s.
        unsafe {
            let idx = _mm_loadu_si128(indices.as_ptr().cast());
            // Lanes index, len, index, len: little-endian words index | len << 32.
            let lo = _mm_unpacklo_epi32(idx, len);
            let hi = _mm_unpackhi_epi32(idx, len);
            Some((
                core::mem::transmute::<[__m128i; 2], [u64; 4]>([lo, hi]),
                len,
            ))
        }
    }

    /// [`Good4::lengths`], one length per 32-bit lane.
    #[inline(always)]
    fn lengths_x4(&self, w: [u64; 4]) -> Option<__m128i> {
        // SAFETY: as in `new`: the target has SSE2; register-only intrinsics.
        unsafe {
            let lo = _mm_castsi128_ps(_mm_set_epi64x(w[1] as i64, w[0] as i64));
            let hi = _mm_castsi128_ps(_mm_set_epi64x(w[3] as i64, w[2] as i64));
            // Bits 31:0 of each word (status and errors), then bits 63:32 (length, VLAN tag).
            let status = _mm_castps_si128(_mm_shuffle_ps::<0b10_00_10_00>(lo, hi));
            let len = _mm_and_si128(
                _mm_castps_si128(_mm_shuffle_ps::<0b11_01_11_01>(lo, hi)),
                self.len_mask,
            );
            let status_ok =
                _mm_cmpeq_epi32(_mm_and_si128(status, self.status_mask), self.status_good);
            // (len - 1) ^ SIGN, which is len - 1 + SIGN (mod 2^32).
            let biased = _mm_add_epi32(len, _mm_set1_epi32(SIGN.wrapping_sub(1) as i32));
            let len_ok = _mm_cmpgt_epi32(self.len_limit, biased);
            let ok = _mm_and_si128(status_ok, len_ok);
            (_mm_movemask_ps(_mm_castsi128_ps(ok)) == 0b1111).then_some(len)
        }
    }
}

/// Frame lengths added up four lanes at a time ([`Good4::metas`] gives them): one vector add
/// per four frames instead of four. A lane holds at most a run's lengths, a quarter of a ring
/// of at most 2^16 descriptors of at most 2^16 bytes each, below 2^32.
#[derive(Clone, Copy)]
pub(crate) struct LenSum(__m128i);

impl LenSum {
    /// Nothing added yet.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        // SAFETY: as in `Good4::new`.
        LenSum(unsafe { _mm_setzero_si128() })
    }

    /// Adds four lengths, one per 32-bit lane.
    #[inline(always)]
    pub(crate) fn add(&mut self, lens: __m128i) {
        // SAFETY: as in `Good4::new`.
        self.0 = unsafe { _mm_add_epi32(self.0, lens) };
    }

    /// The total.
    #[inline(always)]
    pub(crate) fn total(self) -> u64 {
        // SAFETY: any 16 bytes are four valid u32s.
        let lanes: [u32; 4] = unsafe { core::mem::transmute(self.0) };
        lanes.iter().map(|&l| u64::from(l)).sum()
    }
}

/// Random write-backs for the tests that compare the vector and scalar paths.
#[cfg(test)]
pub(crate) mod gen {
    use crate::descriptors::{RX_CHECKED, RX_GOOD};

    /// xorshift64*: a reproducible stream of test inputs without a dependency.
    pub(crate) struct Rng(pub(crate) u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// A write-back a device might write: mostly good, often just off (each checked bit
        /// flipped, lengths 0, at and around the buffer size), sometimes anything at all.
        pub(crate) fn write_back(&mut self, buf_size: u32) -> u64 {
            let r = self.next();
            let mut status = (RX_GOOD as u64) | (r & 0xFFFF_FFFF & !(RX_CHECKED as u64));
            if r >> 60 == 0 {
                status ^= 1 << [0, 1, 29][(r >> 40) as usize % 3];
            }
            let len = match (r >> 56) & 7 {
                0 => 0,
                1 => buf_size,
                2 => buf_size + 1,
                3 => 0xFFFF,
                _ => 1 + (r >> 32) as u32 % buf_size,
            } as u64
                & 0xFFFF;
            let vlan = (r >> 16) & 0xFFFF;
            if r & 0xF == 0 {
                self.next() // anything
            } else {
                status | len << 32 | vlan << 48
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gen::Rng;
    use super::*;
    use crate::descriptors::{decode_rx, RxWriteback};
    use core::arch::x86_64::_mm_cvtsi128_si32;
    use core::arch::x86_64::_mm_srli_si128;

    fn lane(v: __m128i, j: usize) -> u32 {
        // SAFETY: as in `Good4::new`: the target has SSE2; register-only intrinsics.
        unsafe {
            let v = match j {
                0 => v,
                1 => _mm_srli_si128::<4>(v),
                2 => _mm_srli_si128::<8>(v),
                _ => _mm_srli_si128::<12>(v),
            };
            _mm_cvtsi128_si32(v) as u32
        }
    }

    #[test]
    fn four_at_once_agrees_with_the_scalar_decode() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut accepted = 0;
        for case in 0..200_000 {
            let buf_size = [2048, 1, 60, 9728, 0xFFFF, 0x1_0000, 16384][case % 7];
            let check = Good4::new(buf_size);
            let w = [0; 4].map(|_: u64| rng.write_back(buf_size));
            let scalar = w.map(|w| match decode_rx(w, buf_size) {
                RxWriteback::Frame(len) => Some(u32::from(len)),
                _ => None,
            });
            match check.lengths_x4(w) {
                Some(lens) => {
                    accepted += 1;
                    let short = check.lengths(w).expect("the same check");
                    for j in 0..4 {
                        assert_eq!(Some(lane(lens, j)), scalar[j], "{w:x?} size {buf_size}");
                        assert_eq!(u32::from(short[j]), lane(lens, j));
                    }
                }
                None => assert!(scalar.iter().any(Option::is_none), "{w:x?} size {buf_size}"),
            }
        }
        // The generator makes both outcomes common, so the test covers both.
        assert!(accepted > 10_000 && accepted < 190_000, "{accepted}");
    }
}
