//! QEMU end-to-end test, guest side: the ixgbe path must refuse QEMU's igb (82576) device.
//!
//! Usage: `qemu_refuse <pci-address>`. Calls `LinuxPlatform::open` (the path the ixgbe apps
//! use) and checks that it fails with `Error::Unsupported` naming 8086:10c9. The init script
//! then checks that the device is still bound to the kernel's igb driver and that its PCI
//! command register is unchanged. Prints `QTEST: PASS refuse-error` or `QTEST: FAIL ...`.

use std::process::ExitCode;

use platform_linux::{Error, LinuxPlatform, OpenOptions, PciAddress};

fn main() -> ExitCode {
    let Some(arg) = std::env::args().nth(1) else {
        eprintln!("usage: qemu_refuse <pci-address>");
        return ExitCode::from(2);
    };
    let addr: PciAddress = match arg.parse() {
        Ok(a) => a,
        Err(e) => {
            println!("QTEST: FAIL refuse-error: bad address {arg}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match LinuxPlatform::open(&addr, &OpenOptions::default()) {
        Err(e @ Error::Unsupported { .. }) => {
            let msg = e.to_string();
            println!("  LinuxPlatform::open({addr}) -> {msg}");
            if msg.contains("8086:10c9") {
                println!("QTEST: PASS refuse-error (Unsupported, names 8086:10c9)");
                ExitCode::SUCCESS
            } else {
                println!("QTEST: FAIL refuse-error: the message does not name 8086:10c9");
                ExitCode::FAILURE
            }
        }
        Err(other) => {
            println!("QTEST: FAIL refuse-error: expected Unsupported, got: {other}");
            ExitCode::FAILURE
        }
        Ok(p) => {
            println!(
                "QTEST: FAIL refuse-error: LinuxPlatform::open accepted {} ({})",
                p.identity(),
                p.access_path()
            );
            ExitCode::FAILURE
        }
    }
}
