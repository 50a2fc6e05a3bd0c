//! Refusal of this machine's own virtio NIC, with `/sys` read-only in a private mount namespace.
//!
//! The test re-executes itself under `unshare -m`, makes every mount private, bind-remounts `/sys`
//! read-only (a per-mount flag: the host's `/sys` stays writable), checks that `/sys` really is
//! read-only, and only then calls `LinuxPlatform::open` on the host device.

use std::fs;
use std::path::Path;
use std::process::Command;

use platform_linux::{Error, LinuxPlatform, OpenOptions, PciAddress};

const TEST: &str = "host_virtio_nic_is_refused_with_sys_read_only";
const MARKER: &str = "PLATFORM_LINUX_RO_SYS_NAMESPACE";

/// Mount options of the topmost mount at `/sys` in this process's mount namespace.
fn sys_mount_options() -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/sys"))
        .expect("/sys is mounted");
    line.split(' ')
        .nth(5)
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect()
}

/// The first PCI device with vendor 0x1af4 (virtio) and class 0x020000 (Ethernet).
fn host_virtio_nic() -> Option<PciAddress> {
    let mut entries: Vec<_> = fs::read_dir("/sys/bus/pci/devices")
        .ok()?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    entries.into_iter().find_map(|e| {
        let dir = e.path();
        let read = |f: &str| {
            fs::read_to_string(dir.join(f))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        (read("vendor") == "0x1af4" && read("class") == "0x020000")
            .then(|| e.file_name().to_str()?.parse().ok())
            .flatten()
    })
}

#[test]
#[ignore = "needs root: private mount namespace"]
fn host_virtio_nic_is_refused_with_sys_read_only() {
    if std::env::var_os(MARKER).is_none() {
        let exe = std::env::current_exe().unwrap();
        let status = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "set -e; mount --make-rprivate /; mount -o remount,bind,ro /sys; \
                 exec \"$0\" \"$1\" --exact --ignored --nocapture --test-threads=1",
            )
            .arg(&exe)
            .arg(TEST)
            .env(MARKER, "1")
            .status()
            .expect("run unshare");
        assert!(
            status.success(),
            "the test inside the namespace failed: {status}"
        );
        assert!(
            sys_mount_options().iter().any(|o| o == "rw"),
            "the host's /sys must still be read-write"
        );
        return;
    }

    // Inside the private namespace: refuse to go on unless /sys is read-only here.
    let opts = sys_mount_options();
    assert!(
        opts.iter().any(|o| o == "ro"),
        "/sys is not read-only: {opts:?}"
    );
    assert!(Path::new("/sys/bus/pci/devices").is_dir());
    let addr = host_virtio_nic().expect("this machine has a virtio network device");
    match LinuxPlatform::open(&addr, &OpenOptions::default()) {
        Err(e @ Error::Unsupported { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("1af4"), "{msg}");
            assert!(msg.contains(&addr.to_string()), "{msg}");
            assert!(msg.contains("class 020000"), "{msg}");
            println!("refused as expected: {msg}");
        }
        Err(other) => panic!("expected Unsupported, got {other}"),
        Ok(p) => panic!("opened the host's own NIC: {p:?}"),
    }
}
