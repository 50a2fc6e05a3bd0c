//! The host peers' end of `ixgbe-sim`'s UDP wires (one datagram per Ethernet frame, 127.0.0.1
//! only), shared by `sim_peer` and `sock_peer` through `#[path]` includes.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

/// Binds `n` wire sockets on 127.0.0.1, picks a free port for ixgbe-sim's side of each, and
/// writes one line "<peer-port> <sim-port>" per wire to `ports_file` (renamed into place, so
/// run.sh never reads half a file). Returns each socket (blocking) with ixgbe-sim's address.
pub fn bind_wires(n: usize, ports_file: &str) -> Result<Vec<(UdpSocket, SocketAddrV4)>, String> {
    let lo = Ipv4Addr::LOCALHOST;
    let mut wires = Vec::new();
    let mut lines = String::new();
    for _ in 0..n {
        let sock = UdpSocket::bind(SocketAddrV4::new(lo, 0)).map_err(|e| format!("bind: {e}"))?;
        // A free port for ixgbe-sim: bound and released here (the run script starts the sim
        // right after, nothing else on this machine races for it in practice).
        let probe = UdpSocket::bind(SocketAddrV4::new(lo, 0)).map_err(|e| format!("bind: {e}"))?;
        let sim_port = probe.local_addr().map_err(|e| e.to_string())?.port();
        drop(probe);
        let port = sock.local_addr().map_err(|e| e.to_string())?.port();
        let got = enlarge_rcvbuf(&sock, 16 << 20);
        println!("PEER: wire socket 127.0.0.1:{port}, receive buffer {got} bytes");
        lines.push_str(&format!("{port} {sim_port}\n"));
        wires.push((sock, SocketAddrV4::new(lo, sim_port)));
    }
    let tmp = format!("{ports_file}.tmp");
    std::fs::write(&tmp, lines).map_err(|e| format!("write {tmp}: {e}"))?;
    std::fs::rename(&tmp, ports_file).map_err(|e| format!("rename {tmp}: {e}"))?;
    Ok(wires)
}

/// Asks for a receive buffer of `bytes` (SO_RCVBUFFORCE as root, else SO_RCVBUF up to
/// rmem_max): ixgbe-sim sends a guest's bursts at memory speed, and loopback drops what does
/// not fit; those drops would be the test harness's, not the model's. Returns what the kernel
/// granted.
pub fn enlarge_rcvbuf(sock: &UdpSocket, bytes: i32) -> i32 {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let len = std::mem::size_of::<i32>() as libc::socklen_t;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: `fd` is an open socket owned by `sock`; the option value is a valid i32 of
        // the length given.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&bytes as *const i32).cast(),
                len,
            )
        };
        if r == 0 {
            break;
        }
    }
    let mut got: i32 = 0;
    let mut got_len = len;
    // SAFETY: as above; `got` and `got_len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut i32).cast(),
            &mut got_len,
        )
    };
    if r == 0 {
        got
    } else {
        -1
    }
}
