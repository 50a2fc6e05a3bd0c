//! Interrupts through VFIO: one eventfd per vector, registered with `VFIO_DEVICE_SET_IRQS`
//! (linux/vfio.h), waited for with `poll` and cleared by reading the eventfd.
//!
//! MSI-X first (every vector its own eventfd, all registered in one call from vector 0), then
//! MSI, then INTx (one eventfd; INTx is automasked by vfio-pci after it fires and unmasked
//! before the next wait). ixy.rs got two things wrong here that this module does not: its
//! payload held each fd truncated to a byte (the kernel reads an array of 32-bit fds), and each
//! queue registered again from vector 0 with a count equal to its index.

use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use vfio_bindings::bindings::vfio as sys;

use crate::sys::ioctl_ptr;

/// `_IO(VFIO_TYPE, VFIO_BASE + 9)` and `+ 10` (linux/vfio.h).
pub(crate) const VFIO_DEVICE_GET_IRQ_INFO: u32 =
    ((sys::VFIO_TYPE as u32) << 8) | (sys::VFIO_BASE + 9);
pub(crate) const VFIO_DEVICE_SET_IRQS: u32 = ((sys::VFIO_TYPE as u32) << 8) | (sys::VFIO_BASE + 10);

/// Which interrupt of the device the eventfds are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    MsiX,
    Msi,
    Intx,
}

impl Kind {
    fn index(self) -> u32 {
        match self {
            Kind::MsiX => sys::VFIO_PCI_MSIX_IRQ_INDEX,
            Kind::Msi => sys::VFIO_PCI_MSI_IRQ_INDEX,
            Kind::Intx => sys::VFIO_PCI_INTX_IRQ_INDEX,
        }
    }
}

/// The interrupts set up on a device: the kind and one eventfd per vector.
#[derive(Debug)]
pub(crate) struct Irqs {
    pub(crate) kind: Kind,
    fds: Vec<OwnedFd>,
}

/// A `vfio_irq_set` header followed by `fds.len()` 32-bit eventfds, as 32-bit words (the
/// header is five of them, so the fds stay 4-byte aligned as the kernel reads them).
pub(crate) fn set_irqs_payload(index: u32, flags: u32, fds: &[i32]) -> Vec<u32> {
    let header = size_of::<sys::vfio_irq_set>();
    let argsz = header + std::mem::size_of_val(fds);
    let mut words = Vec::with_capacity(argsz / 4);
    // argsz, flags, index, start (vector 0), count.
    words.extend([argsz as u32, flags, index, 0, fds.len() as u32]);
    words.extend(fds.iter().map(|&fd| fd as u32));
    words
}

/// `VFIO_DEVICE_GET_IRQ_INFO`: how many vectors interrupt `kind` has (0 when none or when it
/// cannot signal an eventfd).
fn irq_count(device: &File, kind: Kind) -> io::Result<u32> {
    let mut info = sys::vfio_irq_info {
        argsz: size_of::<sys::vfio_irq_info>() as u32,
        flags: 0,
        index: kind.index(),
        count: 0,
    };
    // SAFETY: VFIO_DEVICE_GET_IRQ_INFO reads and writes one vfio_irq_info, which argsz covers.
    unsafe { ioctl_ptr(device, VFIO_DEVICE_GET_IRQ_INFO, &mut info) }?;
    Ok(if info.flags & sys::VFIO_IRQ_INFO_EVENTFD != 0 {
        info.count
    } else {
        0
    })
}

fn set_irqs(device: &File, mut payload: Vec<u32>) -> io::Result<()> {
    // SAFETY: VFIO_DEVICE_SET_IRQS reads a vfio_irq_set whose argsz (the first word, written
    // by set_irqs_payload) is exactly the length of `payload` in bytes.
    unsafe { ioctl_ptr(device, VFIO_DEVICE_SET_IRQS, payload.as_mut_ptr()) }.map(drop)
}

/// A non-blocking eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; a non-negative result is a new fd nobody else owns.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Registers `vectors` eventfds for `kind` in one call (vectors 0..vectors).
fn trigger(device: &File, kind: Kind, vectors: u32) -> io::Result<Irqs> {
    let fds = (0..vectors)
        .map(|_| eventfd())
        .collect::<io::Result<Vec<_>>>()?;
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    set_irqs(
        device,
        set_irqs_payload(
            kind.index(),
            sys::VFIO_IRQ_SET_DATA_EVENTFD | sys::VFIO_IRQ_SET_ACTION_TRIGGER,
            &raw,
        ),
    )?;
    Ok(Irqs { kind, fds })
}

/// Sets up `vectors` MSI-X vectors, else one MSI, else INTx.
pub(crate) fn enable(device: &File, vectors: u32) -> io::Result<Irqs> {
    let mut last = io::Error::new(io::ErrorKind::Unsupported, "no interrupt with eventfds");
    if irq_count(device, Kind::MsiX)? >= vectors {
        match trigger(device, Kind::MsiX, vectors) {
            Ok(irqs) => return Ok(irqs),
            Err(e) => last = e,
        }
    }
    for kind in [Kind::Msi, Kind::Intx] {
        if irq_count(device, kind)? >= 1 {
            match trigger(device, kind, 1) {
                Ok(irqs) => return Ok(irqs),
                Err(e) => last = e,
            }
        }
    }
    Err(last)
}

/// Tears the eventfds of `irqs` down (`DATA_NONE | ACTION_TRIGGER`, count 0).
pub(crate) fn disable(device: &File, irqs: &Irqs) -> io::Result<()> {
    set_irqs(
        device,
        set_irqs_payload(
            irqs.kind.index(),
            sys::VFIO_IRQ_SET_DATA_NONE | sys::VFIO_IRQ_SET_ACTION_TRIGGER,
            &[],
        ),
    )
}

impl Irqs {
    /// Signals `vector`'s eventfd (with MSI or INTx: the one eventfd), so its waiter returns.
    pub(crate) fn wake(&self, vector: usize) {
        let fd = if self.kind == Kind::MsiX {
            self.fds.get(vector)
        } else {
            self.fds.first()
        };
        if let Some(fd) = fd {
            let one = 1u64;
            // SAFETY: write reads 8 bytes from `one`, which is 8 bytes long. An eventfd write
            // only adds to its counter; it cannot fail short of overflow, which leaves the
            // waiter signalled anyway.
            let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Number of vectors (eventfds).
    pub(crate) fn vectors(&self) -> usize {
        self.fds.len()
    }

    /// Waits for `vector` as [`wait_eventfd`] does; INTx is unmasked first (vfio-pci masks it
    /// when it fires, until the driver has cleared the cause).
    pub(crate) fn wait(&self, device: &File, vector: usize, timeout: Duration) -> io::Result<u64> {
        let fd = self
            .fds
            .get(vector)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such vector"))?;
        if self.kind == Kind::Intx {
            set_irqs(
                device,
                set_irqs_payload(
                    Kind::Intx.index(),
                    sys::VFIO_IRQ_SET_DATA_NONE | sys::VFIO_IRQ_SET_ACTION_UNMASK,
                    &[],
                ),
            )?;
        }
        wait_eventfd(fd, timeout)
    }
}

/// Waits up to `timeout` for the eventfd to be signalled, then reads (and so clears) its
/// counter. Returns the counter: how many signals arrived; 0 on timeout or when a signal to the
/// process interrupted the wait (the caller looks at its flags and waits again).
pub(crate) fn wait_eventfd(fd: &OwnedFd, timeout: Duration) -> io::Result<u64> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: ppoll reads one pollfd and one timespec that live for the call and writes only
    // `revents` of the pollfd; no signal mask is given.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    if rc == 0 {
        return Ok(0);
    }
    let mut count = 0u64;
    // SAFETY: read writes at most 8 bytes into `count`, which is 8 bytes long.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    if n == 8 {
        return Ok(count);
    }
    let e = io::Error::last_os_error();
    // Another reader took it first (non-blocking eventfd): nothing is left.
    if n < 0 && e.kind() == io::ErrorKind::WouldBlock {
        return Ok(0);
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn signal(fd: &OwnedFd, n: u64) {
        // SAFETY: write reads the 8 bytes of `n`.
        let w = unsafe { libc::write(fd.as_raw_fd(), (&n as *const u64).cast(), 8) };
        assert_eq!(w, 8);
    }

    #[test]
    fn ioctl_numbers_match_the_kernel_header() {
        assert_eq!(VFIO_DEVICE_GET_IRQ_INFO, 0x3b6d);
        assert_eq!(VFIO_DEVICE_SET_IRQS, 0x3b6e);
    }

    #[test]
    fn the_payload_is_a_header_and_full_32_bit_fds_from_vector_0() {
        let fds = [3, 0x1234, 70000, 5];
        let p = set_irqs_payload(
            sys::VFIO_PCI_MSIX_IRQ_INDEX,
            sys::VFIO_IRQ_SET_DATA_EVENTFD | sys::VFIO_IRQ_SET_ACTION_TRIGGER,
            &fds,
        );
        // argsz = 20-byte header + 4 bytes per fd.
        assert_eq!(p[0], 20 + 16);
        assert_eq!(p[0] as usize, 4 * p.len());
        assert_eq!(p[1], 4 | 32);
        assert_eq!(p[2], 2, "MSI-X index");
        assert_eq!((p[3], p[4]), (0, 4), "start 0, count 4");
        assert_eq!(&p[5..], &[3, 0x1234, 70000, 5], "fds not truncated");
        let none = set_irqs_payload(0, sys::VFIO_IRQ_SET_DATA_NONE, &[]);
        assert_eq!(none, [20, 1, 0, 0, 0]);
    }

    #[test]
    fn an_eventfd_wait_returns_the_count_and_clears_it() {
        let fd = eventfd().unwrap();
        signal(&fd, 1);
        signal(&fd, 2);
        assert_eq!(wait_eventfd(&fd, Duration::from_secs(1)).unwrap(), 3);
        let t = Instant::now();
        assert_eq!(wait_eventfd(&fd, Duration::from_millis(30)).unwrap(), 0);
        assert!(
            t.elapsed() >= Duration::from_millis(30),
            "waited the timeout"
        );
    }

    #[test]
    fn a_wait_ends_when_another_thread_signals() {
        let fd = std::sync::Arc::new(eventfd().unwrap());
        let other = fd.clone();
        let t = Instant::now();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            signal(&other, 1);
        });
        assert_eq!(wait_eventfd(&fd, Duration::from_secs(5)).unwrap(), 1);
        assert!(t.elapsed() < Duration::from_secs(4));
        h.join().unwrap();
    }

    #[test]
    fn wake_signals_the_vector_asked_for_or_the_single_eventfd() {
        let irqs = Irqs {
            kind: Kind::MsiX,
            fds: vec![eventfd().unwrap(), eventfd().unwrap()],
        };
        irqs.wake(1);
        irqs.wake(7); // not set up: ignored
        assert_eq!(wait_eventfd(&irqs.fds[0], Duration::ZERO).unwrap(), 0);
        assert_eq!(wait_eventfd(&irqs.fds[1], Duration::ZERO).unwrap(), 1);
        let single = Irqs {
            kind: Kind::Msi,
            fds: vec![eventfd().unwrap()],
        };
        single.wake(3);
        assert_eq!(wait_eventfd(&single.fds[0], Duration::ZERO).unwrap(), 1);
    }
}
