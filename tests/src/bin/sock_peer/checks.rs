//! What the client checks against `ixgbe-echo`, with the host kernel's sockets only: ping (an
//! ICMP datagram socket, what iputils' `ping` uses), UDP echo (`UdpSocket`) and a TCP stream
//! echoed back (`TcpStream`), every byte compared.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use ixgbe_tools::echo::{pattern, pattern_fill, pattern_mismatch};

/// ICMP echo request and reply types (RFC 792).
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
/// Payload bytes of each ping (iputils' default).
const PING_PAYLOAD: usize = 56;

/// An ICMP datagram ("ping") socket: the kernel fills in the identifier and the checksum of
/// what is sent, and hands back only the replies to this socket's identifier, ICMP header
/// first. Needs the namespace's `net.ipv4.ping_group_range` to include our group.
pub struct Pinger {
    sock: UdpSocket,
    to: SocketAddrV4,
}

impl Pinger {
    /// A ping socket towards `to`.
    pub fn new(to: Ipv4Addr) -> Result<Pinger, String> {
        // SAFETY: socket() takes no pointers.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::IPPROTO_ICMP,
            )
        };
        if fd < 0 {
            return Err(format!(
                "ICMP datagram socket: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `fd` is a socket just opened here and owned by nothing else; the UdpSocket
        // takes it over (sendto/recvfrom/SO_RCVTIMEO work on it as on a UDP socket) and
        // closes it.
        let sock = unsafe { UdpSocket::from_raw_fd(fd) };
        Ok(Pinger {
            sock,
            to: SocketAddrV4::new(to, 0),
        })
    }

    fn payload(seq: u16) -> Vec<u8> {
        (0..PING_PAYLOAD as u64)
            .map(|i| pattern(u64::from(seq) * 131 + i))
            .collect()
    }

    /// Sends echo request `seq` and waits up to `wait` for its reply. Ok(true): the reply came
    /// back with the payload intact; Ok(false): no reply in time. A reply with another payload
    /// is an error.
    pub fn ping(&self, seq: u16, wait: Duration) -> Result<bool, String> {
        let mut req = vec![ECHO_REQUEST, 0, 0, 0, 0, 0];
        req.extend_from_slice(&seq.to_be_bytes());
        let payload = Self::payload(seq);
        req.extend_from_slice(&payload);
        // Before the guest has answered ARP the kernel may refuse (EHOSTUNREACH): no reply.
        if self.sock.send_to(&req, self.to).is_err() {
            std::thread::sleep(wait);
            return Ok(false);
        }
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.sock
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let n = match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(false)
                }
                Err(e) => return Err(format!("ping recv: {e}")),
            };
            let reply = &buf[..n];
            // A late reply to an earlier request: skip it.
            if n < 8 || reply[0] != ECHO_REPLY || reply[6..8] != seq.to_be_bytes() {
                continue;
            }
            if reply[8..] != payload[..] {
                return Err(format!(
                    "echo reply {seq}: {} payload bytes, not the {PING_PAYLOAD} sent",
                    n - 8
                ));
            }
            return Ok(true);
        }
    }
}

/// Lengths of the UDP datagrams: from 1 byte (a padded minimum frame) to 1472 (a full
/// 1514-byte frame), around the sizes where padding and buffer boundaries lie.
pub const UDP_LENGTHS: [usize; 16] = [
    1, 2, 17, 18, 19, 63, 64, 100, 511, 512, 1000, 1023, 1024, 1400, 1471, 1472,
];

/// Datagram `k`: its number, then the stream pattern from `k * 7919`.
fn datagram(k: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..UDP_LENGTHS[k] as u64)
        .map(|i| pattern(k as u64 * 7919 + i))
        .collect();
    d[0] = k as u8;
    d
}

/// Sends every datagram of [`UDP_LENGTHS`] once and waits up to `wait` for the echoes.
/// Returns (echoed intact, bad); one not back in time is neither.
pub fn udp_echo(to: SocketAddrV4, wait: Duration) -> Result<(usize, usize), String> {
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("udp bind: {e}"))?;
    sock.connect(to).map_err(|e| format!("udp connect: {e}"))?;
    for k in 0..UDP_LENGTHS.len() {
        sock.send(&datagram(k))
            .map_err(|e| format!("udp send {k}: {e}"))?;
    }
    let mut seen = [false; UDP_LENGTHS.len()];
    let (mut good, mut bad) = (0, 0);
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    while good < seen.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => return Err(format!("udp recv: {e}")),
        };
        let k = buf[0] as usize;
        if n > 0 && k < seen.len() && !seen[k] && buf[..n] == datagram(k)[..] {
            seen[k] = true;
            good += 1;
        } else {
            bad += 1;
        }
    }
    Ok((good, bad))
}

/// What came back of a TCP stream.
#[derive(Debug)]
pub struct TcpResult {
    /// Bytes sent.
    pub sent: u64,
    /// Bytes received before the echo closed its side.
    pub received: u64,
    /// Offset of the first byte that differed from what was sent.
    pub first_mismatch: Option<u64>,
    /// Why the stream ended early, if it did.
    pub error: Option<String>,
    /// From the connect to the echo's end of stream.
    pub elapsed: Duration,
}

/// Connects to `to`, streams `bytes` of the pattern (then shuts down its sending side) while
/// reading the echo until the far end closes; every byte read is compared. A stall of `stall`
/// without a byte either way ends it with an error.
pub fn tcp_echo(to: SocketAddrV4, bytes: u64, stall: Duration) -> Result<TcpResult, String> {
    let start = Instant::now();
    let stream = TcpStream::connect_timeout(&SocketAddr::V4(to), Duration::from_secs(10))
        .map_err(|e| format!("tcp connect to {to}: {e}"))?;
    stream
        .set_read_timeout(Some(stall))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(stall))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let sender = std::thread::spawn(move || -> Result<u64, String> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = 0u64;
        while at < bytes {
            let n = (bytes - at).min(buf.len() as u64) as usize;
            pattern_fill(at, &mut buf[..n]);
            writer
                .write_all(&buf[..n])
                .map_err(|e| format!("tcp write at byte {at}: {e}"))?;
            at += n as u64;
        }
        writer
            .shutdown(Shutdown::Write)
            .map_err(|e| format!("tcp shutdown: {e}"))?;
        Ok(at)
    });
    let mut reader = stream;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut received, mut first_mismatch, mut error) = (0u64, None, None);
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if first_mismatch.is_none() {
                    first_mismatch =
                        pattern_mismatch(received, &buf[..n]).map(|i| received + i as u64);
                }
                received += n as u64;
                if received > bytes {
                    error = Some(format!("more bytes back ({received}) than sent ({bytes})"));
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(format!("tcp read at byte {received}: {e}"));
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    if error.is_some() {
        // Unblocks the sender if it is stuck on a full window.
        let _ = reader.shutdown(Shutdown::Both);
    }
    let sent = match sender.join() {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            error.get_or_insert(e);
            0
        }
        Err(_) => {
            error.get_or_insert("the sending thread panicked".into());
            0
        }
    };
    Ok(TcpResult {
        sent,
        received,
        first_mismatch,
        error,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_datagram_has_its_length_and_differs_from_the_others() {
        let all: Vec<Vec<u8>> = (0..UDP_LENGTHS.len()).map(datagram).collect();
        for (k, d) in all.iter().enumerate() {
            assert_eq!(d.len(), UDP_LENGTHS[k]);
            assert_eq!(d[0] as usize, k);
            for other in &all[k + 1..] {
                assert_ne!(d, other);
            }
        }
        assert_eq!(UDP_LENGTHS.iter().max(), Some(&1472));
    }
}
