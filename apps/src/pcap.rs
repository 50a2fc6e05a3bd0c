//! The pcap file format (the classic libpcap format, as tcpdump and Wireshark read it): a
//! writer for `ixgbe-pcap` and a reader for `ixgbe-pktgen --pcap` and the tests.
//!
//! Written here rather than with the `pcap-file` crate: the format is a 24-byte file header
//! and a 16-byte header per frame (<https://wiki.wireshark.org/Development/LibpcapFileFormat>,
//! <https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/>), while pcap-file 2.0 pulls in
//! two versions of `syn` and wraps write errors so that their cause (a full disk, a closed
//! pipe) is lost. Here every error is the [`std::io::Error`] of the write that failed.

use std::io::{self, Read, Write};
use std::time::Duration;

/// Magic number of a file with microsecond timestamps.
pub const MAGIC_MICROS: u32 = 0xA1B2_C3D4;
/// Magic number of a file with nanosecond timestamps.
pub const MAGIC_NANOS: u32 = 0xA1B2_3C4D;
/// Link type of Ethernet frames (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Default snapshot length: every frame whole (tcpdump's default).
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Writes frames as pcap records (little endian, Ethernet).
pub struct Writer<W: Write> {
    inner: W,
    snaplen: u32,
    nanos: bool,
}

impl<W: Write> Writer<W> {
    /// Writes the file header: frames are cut to `snaplen` bytes, timestamps in nanoseconds
    /// if `nanos`, else microseconds.
    pub fn new(mut inner: W, snaplen: u32, nanos: bool) -> io::Result<Self> {
        let magic = if nanos { MAGIC_NANOS } else { MAGIC_MICROS };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs: 0.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        inner.write_all(&h)?;
        Ok(Writer {
            inner,
            snaplen,
            nanos,
        })
    }

    /// Writes one frame received at `ts` (since the Unix epoch); returns the bytes of the frame
    /// that were kept (at most the snapshot length).
    pub fn write(&mut self, ts: Duration, frame: &[u8]) -> io::Result<usize> {
        let kept = frame.len().min(self.snaplen as usize);
        let frac = if self.nanos {
            ts.subsec_nanos()
        } else {
            ts.subsec_micros()
        };
        let mut h = [0u8; 16];
        // The format's seconds are 32 bits (good until 2106).
        h[0..4].copy_from_slice(&(ts.as_secs() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&(kept as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.inner.write_all(&h)?;
        self.inner.write_all(&frame[..kept])?;
        Ok(kept)
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Timestamp since the Unix epoch.
    pub ts: Duration,
    /// Length of the frame on the wire.
    pub orig_len: u32,
    /// The bytes captured (at most the snapshot length).
    pub data: Vec<u8>,
}

/// Reads a pcap file of either byte order and either timestamp resolution.
pub struct Reader<R: Read> {
    inner: R,
    big_endian: bool,
    /// True for nanosecond timestamps.
    pub nanos: bool,
    /// The file's snapshot length.
    pub snaplen: u32,
    /// The file's link type.
    pub linktype: u32,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<R: Read> Reader<R> {
    /// Reads and checks the file header.
    pub fn new(mut inner: R) -> io::Result<Self> {
        let mut h = [0u8; 24];
        inner.read_exact(&mut h)?;
        let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let be = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (big_endian, nanos) = match (le, be) {
            (MAGIC_MICROS, _) => (false, false),
            (MAGIC_NANOS, _) => (false, true),
            (_, MAGIC_MICROS) => (true, false),
            (_, MAGIC_NANOS) => (true, true),
            _ => return Err(bad(format!("not a pcap file (magic {le:#010x})"))),
        };
        let mut r = Reader {
            inner,
            big_endian,
            nanos,
            snaplen: 0,
            linktype: 0,
        };
        r.snaplen = r.u32_at(&h, 16);
        r.linktype = r.u32_at(&h, 20) & 0x0FFF_FFFF; // the upper bits are FCS flags
        Ok(r)
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    }

    /// The next record, `None` at the end of the file; a record cut short is an error.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        let mut h = [0u8; 16];
        let mut got = 0;
        while got < h.len() {
            match self.inner.read(&mut h[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(bad("pcap record header cut short".into())),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let secs = self.u32_at(&h, 0);
        let frac = self.u32_at(&h, 4);
        let incl = self.u32_at(&h, 8);
        let orig_len = self.u32_at(&h, 12);
        if incl > self.snaplen.max(DEFAULT_SNAPLEN) {
            return Err(bad(format!("pcap record of {incl} bytes is too long")));
        }
        let nanos = if self.nanos { frac } else { frac * 1000 };
        if nanos >= 1_000_000_000 {
            return Err(bad(format!("pcap timestamp fraction {frac} out of range")));
        }
        let mut data = vec![0u8; incl as usize];
        self.inner.read_exact(&mut data)?;
        Ok(Some(Record {
            ts: Duration::new(u64::from(secs), nanos),
            orig_len,
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_are_the_documented_ones() {
        let w = Writer::new(Vec::new(), 65535, false).unwrap();
        let bytes = w.into_inner();
        assert_eq!(
            bytes,
            [
                0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0,
                0, 0
            ]
        );
        let n = Writer::new(Vec::new(), 100, true).unwrap().into_inner();
        assert_eq!(n[0..4], [0x4D, 0x3C, 0xB2, 0xA1]);
    }

    #[test]
    fn write_then_read_with_snaplen_and_both_resolutions() {
        for nanos in [false, true] {
            let mut w = Writer::new(Vec::new(), 64, nanos).unwrap();
            let ts = Duration::new(1_700_000_000, 123_456_789);
            let long: Vec<u8> = (0..100u8).collect();
            assert_eq!(w.write(ts, &long).unwrap(), 64);
            assert_eq!(w.write(ts, &long[..10]).unwrap(), 10);
            let bytes = w.into_inner();
            assert_eq!(bytes.len(), 24 + 16 + 64 + 16 + 10);
            let mut r = Reader::new(&bytes[..]).unwrap();
            assert_eq!((r.nanos, r.snaplen, r.linktype), (nanos, 64, 1));
            let a = r.next_record().unwrap().unwrap();
            let want_ts = if nanos {
                ts
            } else {
                Duration::new(1_700_000_000, 123_456_000)
            };
            assert_eq!(a.ts, want_ts);
            assert_eq!((a.orig_len, &a.data[..]), (100, &long[..64]));
            let b = r.next_record().unwrap().unwrap();
            assert_eq!((b.orig_len, &b.data[..]), (10, &long[..10]));
            assert!(r.next_record().unwrap().is_none());
            // A record cut short is an error, not the end.
            let mut cut = Reader::new(&bytes[..bytes.len() - 3]).unwrap();
            cut.next_record().unwrap();
            assert!(cut.next_record().is_err());
        }
    }

    #[test]
    fn big_endian_files_are_read() {
        let mut f = Vec::new();
        f.extend_from_slice(&MAGIC_MICROS.to_be_bytes());
        f.extend_from_slice(&[
            0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 1,
        ]);
        f.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 2, 0xAB, 0xCD]);
        let mut r = Reader::new(&f[..]).unwrap();
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(rec.ts, Duration::new(5, 7000));
        assert_eq!(rec.data, [0xAB, 0xCD]);
        assert!(Reader::new(&[0u8; 24][..]).is_err());
    }

    #[test]
    fn write_errors_keep_their_cause() {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
        let Ok(full) = full else {
            panic!("/dev/full is missing");
        };
        let mut w = Writer::new(io::BufWriter::new(full), 100, false).unwrap();
        w.write(Duration::ZERO, &[0u8; 60]).unwrap();
        let e = w.flush().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28), "{e}"); // ENOSPC
    }
}
