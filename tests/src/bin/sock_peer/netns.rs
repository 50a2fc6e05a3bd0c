//! A private network namespace with one TAP device in it: the host kernel's own TCP/IP stack
//! on a network that holds nothing but the simulated cable.
//!
//! `unshare(CLONE_NEWNET)` gives this process a namespace of its own (only `lo`, down); the
//! machine's namespace, its interfaces, routes and sysctls are never touched, and the
//! namespace with the TAP device in it disappears when the process exits.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;

/// The namespace this thread is in (`net:[inode]`).
pub fn current() -> Result<String, String> {
    std::fs::read_link("/proc/thread-self/ns/net")
        .map(|p| p.display().to_string())
        .map_err(|e| format!("readlink /proc/thread-self/ns/net: {e}"))
}

/// Moves this thread (and every thread and process it starts afterwards) into a new network
/// namespace. Call before starting any thread: a namespace belongs to the thread that made it.
pub fn enter_private() -> Result<(), String> {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET changes only this thread's namespace,
    // which no memory of this process depends on (sockets opened before stay in theirs).
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET): {} (needs root or CAP_SYS_ADMIN)",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Writes a sysctl under /proc/sys/net: these files are the current namespace's own.
pub fn sysctl(name: &str, value: &str) -> Result<(), String> {
    let path = format!("/proc/sys/net/{name}");
    std::fs::write(&path, value).map_err(|e| format!("write {value:?} to {path}: {e}"))
}

/// Names of the interfaces in the current namespace (/proc/thread-self/net/dev is this
/// thread's namespace's list).
pub fn interfaces() -> Result<Vec<String>, String> {
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev")
        .map_err(|e| format!("read /proc/thread-self/net/dev: {e}"))?;
    Ok(dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
        .collect())
}

/// An `ifreq` naming `name`, everything else zero.
fn ifreq(name: &str) -> Result<libc::ifreq, String> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || !name.is_ascii() {
        return Err(format!("bad interface name {name:?}"));
    }
    // SAFETY: ifreq is a plain C struct (a name and a union of integers, addresses and a
    // pointer); all-zero bytes are a valid value of every field.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(r)
}

/// Runs one interface ioctl on `fd` with `req`.
fn ioctl(fd: i32, op: libc::Ioctl, what: &str, req: &mut libc::ifreq) -> Result<(), String> {
    // SAFETY: every request used here (TUNSETIFF, SIOCSIFHWADDR, SIOCSIFADDR, SIOCSIFNETMASK,
    // SIOCGIFFLAGS, SIOCSIFFLAGS) reads and writes one `struct ifreq`, and `req` is one, valid
    // and exclusively borrowed for the call; `fd` is open.
    if unsafe { libc::ioctl(fd, op, req as *mut libc::ifreq) } != 0 {
        return Err(format!("{what}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The netmask of a prefix length (0 to 32).
fn netmask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(
        u32::MAX
            .checked_shl(32 - u32::from(prefix.min(32)))
            .unwrap_or(0),
    )
}

/// An IPv4 `sockaddr` (family, port 0, address) as the address ioctls take it.
fn sockaddr_v4(a: Ipv4Addr) -> libc::sockaddr {
    let mut data = [0 as libc::c_char; 14];
    // sockaddr_in after the family: port (2 bytes, 0), then the address in network order.
    for (d, s) in data[2..6].iter_mut().zip(a.octets()) {
        *d = s as libc::c_char;
    }
    libc::sockaddr {
        sa_family: libc::AF_INET as libc::sa_family_t,
        sa_data: data,
    }
}

/// A TAP device: each `read` of the file is one Ethernet frame the kernel sent on it (no FCS),
/// each `write` one frame it receives.
pub struct Tap {
    /// The `/dev/net/tun` file attached to the device.
    pub file: File,
    /// The interface name.
    pub name: String,
}

impl Tap {
    /// Creates TAP device `name` in the current namespace (`IFF_NO_PI`: bare frames, no
    /// packet-information header; no `IFF_VNET_HDR`, so the kernel checksums and segments
    /// everything itself before the frame reaches us).
    pub fn create(name: &str) -> Result<Tap, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| format!("open /dev/net/tun: {e} (is the tun module loaded?)"))?;
        let mut req = ifreq(name)?;
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        ioctl(file.as_raw_fd(), libc::TUNSETIFF, "TUNSETIFF", &mut req)?;
        Ok(Tap {
            file,
            name: name.into(),
        })
    }

    /// Gives the device MAC `mac` and the address `addr/prefix`, and brings it up.
    pub fn configure(&self, mac: [u8; 6], addr: Ipv4Addr, prefix: u8) -> Result<(), String> {
        // The address ioctls go through any AF_INET socket of this namespace.
        let ctl = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("control socket: {e}"))?;
        let fd = ctl.as_raw_fd();
        let mut req = ifreq(&self.name)?;
        let mut hw = [0 as libc::c_char; 14];
        for (d, s) in hw.iter_mut().zip(mac) {
            *d = s as libc::c_char;
        }
        req.ifr_ifru.ifru_hwaddr = libc::sockaddr {
            sa_family: libc::ARPHRD_ETHER,
            sa_data: hw,
        };
        ioctl(fd, libc::SIOCSIFHWADDR, "SIOCSIFHWADDR", &mut req)?;
        let mut req = ifreq(&self.name)?;
        req.ifr_ifru.ifru_addr = sockaddr_v4(addr);
        ioctl(fd, libc::SIOCSIFADDR, "SIOCSIFADDR", &mut req)?;
        let mut req = ifreq(&self.name)?;
        req.ifr_ifru.ifru_netmask = sockaddr_v4(netmask(prefix));
        ioctl(fd, libc::SIOCSIFNETMASK, "SIOCSIFNETMASK", &mut req)?;
        let mut req = ifreq(&self.name)?;
        ioctl(fd, libc::SIOCGIFFLAGS, "SIOCGIFFLAGS", &mut req)?;
        // SAFETY: SIOCGIFFLAGS has just written the flags member of the union.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        ioctl(fd, libc::SIOCSIFFLAGS, "SIOCSIFFLAGS", &mut req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks() {
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(30), Ipv4Addr::new(255, 255, 255, 252));
        assert_eq!(netmask(32), Ipv4Addr::BROADCAST);
        assert_eq!(netmask(0), Ipv4Addr::UNSPECIFIED);
    }

    #[test]
    fn an_ipv4_sockaddr_is_laid_out_as_sockaddr_in() {
        let sa = sockaddr_v4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(sa.sa_family, libc::AF_INET as libc::sa_family_t);
        let data: Vec<u8> = sa.sa_data.iter().map(|&b| b as u8).collect();
        // Port 0, then the address in network order, then zeros.
        assert_eq!(&data[..6], &[0, 0, 10, 0, 0, 1]);
        assert!(data[6..].iter().all(|&b| b == 0));
    }

    #[test]
    fn interface_names_must_fit_ifreq() {
        let r = ifreq("ixecho0").unwrap();
        let name: Vec<u8> = r.ifr_name.iter().map(|&b| b as u8).collect();
        assert_eq!(&name[..8], b"ixecho0\0");
        assert!(ifreq("").is_err());
        assert!(ifreq("a-name-too-long-x").is_err());
        assert!(ifreq(&"x".repeat(libc::IFNAMSIZ - 1)).is_ok());
        assert!(ifreq(&"x".repeat(libc::IFNAMSIZ)).is_err());
    }
}
