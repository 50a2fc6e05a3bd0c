//! `LinuxPlatform` against a fake sysfs tree: parsing, identity, refusal, take-over, BAR0 MMIO.

mod common;

use std::fs;

use common::{initial_bar, initial_config, Fake, Spec, ADDR};
use ixgbe_core::Platform;
use platform_linux::{read_identity, AccessPath, Error, LinuxPlatform, PciAddress, PciIdentity};

#[test]
fn parses_full_and_short_addresses() {
    let full: PciAddress = "0000:03:00.0".parse().unwrap();
    assert_eq!(
        full,
        PciAddress {
            domain: 0,
            bus: 3,
            device: 0,
            function: 0
        }
    );
    let short: PciAddress = "03:00.0".parse().unwrap();
    assert_eq!(short, full);
    let odd: PciAddress = "abcd:FF:1f.7".parse().unwrap();
    assert_eq!(
        odd,
        PciAddress {
            domain: 0xabcd,
            bus: 0xff,
            device: 0x1f,
            function: 7
        }
    );
    assert_eq!(odd.to_string(), "abcd:ff:1f.7");
    assert_eq!(short.to_string(), "0000:03:00.0");
    let round: PciAddress = odd.to_string().parse().unwrap();
    assert_eq!(round, odd);
}

#[test]
fn rejects_malformed_addresses() {
    for bad in [
        "",
        "03",
        "03:00",
        "0000:03:00",
        "0000:03:00.",
        "0000:03:.0",
        "0000::00.0",
        ":03:00.0",
        "0000:03:20.0",  // device 0x20 >= 32
        "0000:03:00.8",  // function 8
        "0000:03:00.10", // two-digit function
        "00000:03:00.0", // five-digit domain
        "0000:003:00.0", // three-digit bus
        "0000:03:000.0",
        "0000:g3:00.0",
        "+3:00.0",
        "0000:03:00.0 ",
        " 0000:03:00.0",
        "0000:03:00.0.1",
        "1:2:3:4.0",
        "0000:03:00:0",
        "-1:00.0",
    ] {
        match bad.parse::<PciAddress>() {
            Err(e @ Error::BadAddress { .. }) => {
                assert!(
                    e.to_string().contains("0000:03:00.0"),
                    "message gives an example: {e}"
                )
            }
            other => panic!("{bad:?} should be rejected, got {other:?}"),
        }
    }
}

#[test]
fn reads_identity_from_sysfs() {
    let fake = Fake::new(Spec::default());
    let id = read_identity(&fake.opts.sysfs_root, &fake.addr).unwrap();
    assert_eq!(
        id,
        PciIdentity {
            vendor: 0x8086,
            device: 0x10fb,
            class: 0x020000
        }
    );
    assert_eq!(id.to_string(), "8086:10fb class 020000");

    let missing: PciAddress = "0000:04:00.0".parse().unwrap();
    match read_identity(&fake.opts.sysfs_root, &missing) {
        Err(Error::NoSuchDevice { addr, .. }) => assert_eq!(addr, missing),
        other => panic!("expected NoSuchDevice, got {other:?}"),
    }
    let err = LinuxPlatform::open(&missing, &fake.opts).unwrap_err();
    assert!(matches!(err, Error::NoSuchDevice { .. }), "{err:?}");
}

#[test]
fn refuses_unsupported_devices_without_writing_anything() {
    // A virtio NIC, an X540 (same vendor, not handled) and an 82576.
    for (vendor, device, shown) in [
        (0x1af4, 0x1041, "1af4:1041"),
        (0x8086, 0x1528, "8086:1528"),
        (0x8086, 0x10c9, "8086:10c9"),
    ] {
        let fake = Fake::new(Spec {
            vendor,
            device,
            ..Spec::default()
        });
        let before = fake.snapshot();
        std::thread::sleep(std::time::Duration::from_millis(20)); // so a write would move mtimes
        let err = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap_err();
        match &err {
            Error::Unsupported {
                addr,
                identity,
                supported,
            } => {
                assert_eq!(*addr, fake.addr);
                assert_eq!(identity.vendor, vendor);
                assert_eq!(identity.device, device);
                assert!(supported.contains("8086:10fb"), "{supported}");
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(shown) && msg.contains("class 020000"), "{msg}");
        assert!(msg.contains("82599"), "{msg}");
        assert_eq!(fake.snapshot(), before, "nothing may be written");
        assert_eq!(fs::read(fake.unbind_file("ixgbe")).unwrap(), b"");
    }
}

#[test]
fn open_with_takes_a_device_the_predicate_accepts() {
    let fake = Fake::new(Spec {
        device: 0x10c9,
        driver: Some("igb"),
        ..Spec::default()
    });
    let igb = |id: &PciIdentity| id.vendor == 0x8086 && id.device == 0x10c9;
    let p = LinuxPlatform::open_with(&fake.addr, &fake.opts, &igb, "82576").unwrap();
    assert_eq!(p.identity().device, 0x10c9);
    assert_eq!(fs::read_to_string(fake.unbind_file("igb")).unwrap(), ADDR);
    drop(p);

    let fake = Fake::new(Spec::default());
    let before = fake.snapshot();
    let err =
        LinuxPlatform::open_with(&fake.addr, &fake.opts, &igb, "8086:10c9 (82576)").unwrap_err();
    assert!(err.to_string().contains("8086:10c9 (82576)"), "{err}");
    assert_eq!(fake.snapshot(), before);
}

#[test]
fn open_unbinds_the_kernel_driver() {
    let fake = Fake::new(Spec::default());
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    assert_eq!(fs::read_to_string(fake.unbind_file("ixgbe")).unwrap(), ADDR);
    assert_eq!(p.address(), fake.addr);
    assert_eq!(
        p.identity(),
        PciIdentity {
            vendor: 0x8086,
            device: 0x10fb,
            class: 0x020000
        }
    );
    assert_eq!(p.access_path(), AccessPath::Sysfs);
    assert_eq!(
        p.access_path().to_string(),
        "sysfs (root, /proc/self/pagemap)"
    );
}

#[test]
fn open_without_a_bound_driver_unbinds_nothing() {
    let fake = Fake::new(Spec {
        driver: None,
        ..Spec::default()
    });
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    assert_eq!(p.access_path(), AccessPath::Sysfs);
    assert!(!fake.opts.sysfs_root.join("bus/pci/drivers").exists());
}

#[test]
fn enables_memory_space_and_bus_master_preserving_other_bits() {
    let spec = Spec {
        command: 0x0401,
        ..Spec::default()
    }; // I/O space + INTx disable
    let mut expected = initial_config(&spec);
    let fake = Fake::new(spec);
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    assert_eq!(fake.command(), 0x0407);
    expected[4..6].copy_from_slice(&0x0407u16.to_le_bytes());
    assert_eq!(fake.config(), expected, "only the command register changes");

    // A clone shares the device; dropping the last handle clears Bus Master (stops DMA).
    let clone = p.clone();
    drop(p);
    assert_eq!(fake.command(), 0x0407);
    drop(clone);
    assert_eq!(fake.command(), 0x0403);
}

#[test]
fn bar0_is_mapped_from_resource0() {
    let fake = Fake::new(Spec {
        bar_len: 0x20000,
        ..Spec::default()
    });
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    assert_eq!(p.bar0_len(), 0x20000);
    assert_eq!(p.read32(0), 0xb000_0000);
    assert_eq!(p.read32(0x4200), 0xb000_4200);
    assert_eq!(p.read32(0x1fffc), 0xb001_fffc);

    // SAFETY: the "device" is a regular file; no DMA can result.
    unsafe {
        p.write32(0x8, 0x1234_5678);
        p.write32(0x1fffc, 0xdead_beef);
    }
    assert_eq!(p.read32(0x8), 0x1234_5678);
    let clone = p.clone();
    assert_eq!(
        clone.read32(0x1fffc),
        0xdead_beef,
        "clones share the mapping"
    );

    // The stores land in the file (MAP_SHARED).
    let mut expected = initial_bar(0x20000);
    expected[8..12].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    expected[0x1fffc..].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    assert_eq!(fs::read(fake.dev_dir.join("resource0")).unwrap(), expected);
}

#[test]
fn out_of_bounds_and_unaligned_mmio_is_rejected() {
    let fake = Fake::new(Spec {
        bar_len: 0x1000,
        ..Spec::default()
    });
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    assert_eq!(p.try_read32(0xffc), Some(0xb000_0ffc));
    assert_eq!(p.try_read32(0x1000), None);
    assert_eq!(p.try_read32(0xffe), None);
    assert_eq!(p.try_read32(2), None);
    assert_eq!(p.try_read32(u32::MAX), None);
    assert_eq!(p.try_read32(u32::MAX - 3), None);
    // SAFETY: regular file, no DMA.
    unsafe {
        assert_eq!(p.try_write32(0x1000, 1), None);
        assert_eq!(p.try_write32(0x1001, 1), None);
        assert_eq!(p.try_write32(0xffc, 7), Some(()));
    }
    assert_eq!(
        fs::read(fake.dev_dir.join("resource0")).unwrap().len(),
        0x1000,
        "file not grown"
    );
    assert_eq!(p.read32(0xffc), 7);
}

#[test]
#[should_panic(expected = "outside BAR0")]
fn platform_read32_out_of_bounds_panics() {
    let fake = Fake::new(Spec {
        bar_len: 0x1000,
        ..Spec::default()
    });
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    p.read32(0x1000);
}

#[test]
#[should_panic(expected = "outside BAR0")]
fn platform_write32_unaligned_panics() {
    let fake = Fake::new(Spec {
        bar_len: 0x1000,
        ..Spec::default()
    });
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    // SAFETY: regular file, no DMA.
    unsafe { p.write32(0x6, 0) };
}

#[test]
fn refuses_without_hugepages_before_changing_anything() {
    let fake = Fake::new(Spec {
        free_hugepages: 0,
        ..Spec::default()
    });
    let before = fake.snapshot();
    let err = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap_err();
    assert!(matches!(err, Error::NoHugepages { .. }), "{err:?}");
    assert!(
        err.to_string().contains("scripts/setup-hugepages.sh"),
        "{err}"
    );
    assert_eq!(fake.snapshot(), before);
}

#[test]
fn refuses_without_cap_sys_admin_before_changing_anything() {
    // Every capability except CAP_SYS_ADMIN (bit 21).
    let fake = Fake::new(Spec {
        cap_eff: 0x0000_01ff_ffdf_ffff,
        ..Spec::default()
    });
    let before = fake.snapshot();
    let err = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap_err();
    match &err {
        Error::PermissionDenied { what, fix } => {
            assert!(what.contains("pagemap"), "{what}");
            assert!(fix.contains("bind-vfio.sh") && fix.contains(ADDR), "{fix}");
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert_eq!(fake.snapshot(), before);
}

#[test]
fn chooses_vfio_when_bound_to_vfio_pci_and_group_node_exists() {
    // The fake /dev/vfio nodes are regular files, so the first VFIO ioctl fails: that proves
    // VFIO was chosen, and nothing in sysfs may have been written (no unbind of vfio-pci).
    let fake = Fake::new(Spec {
        driver: Some("vfio-pci"),
        iommu_group: Some(7),
        dev_vfio: true,
        ..Spec::default()
    });
    let before = fake.snapshot();
    let err = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap_err();
    match &err {
        Error::Vfio { what, .. } => assert!(what.contains("VFIO_GET_API_VERSION"), "{what}"),
        other => panic!("expected a VFIO error, got {other:?}"),
    }
    assert_eq!(fake.snapshot(), before);
    assert_eq!(
        AccessPath::Vfio { group: 7 }.to_string(),
        "vfio (group 7, IOMMU)"
    );
}

#[test]
fn uses_sysfs_when_the_vfio_group_node_is_missing_or_driver_differs() {
    let fake = Fake::new(Spec {
        driver: Some("vfio-pci"),
        iommu_group: Some(7),
        dev_vfio: false,
        ..Spec::default()
    });
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    assert_eq!(p.access_path(), AccessPath::Sysfs);
    drop(p);

    let fake = Fake::new(Spec {
        driver: Some("ixgbe"),
        iommu_group: Some(3),
        dev_vfio: true,
        ..Spec::default()
    });
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    assert_eq!(p.access_path(), AccessPath::Sysfs);
    assert_eq!(fs::read_to_string(fake.unbind_file("ixgbe")).unwrap(), ADDR);
}

#[test]
fn refuses_physical_dma_when_the_iommu_translates() {
    for kind in ["DMA", "DMA-FQ"] {
        let fake = Fake::new(Spec {
            iommu_group: Some(5),
            iommu_type: kind,
            ..Spec::default()
        });
        let before = fake.snapshot();
        let err = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap_err();
        match &err {
            Error::PermissionDenied { what, fix } => {
                assert!(what.contains("IOMMU"), "{what}");
                assert!(
                    fix.contains("bind-vfio.sh") && fix.contains("iommu=pt"),
                    "{fix}"
                );
            }
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
        assert_eq!(fake.snapshot(), before);
    }
    // Passthrough ("identity") groups work with physical addresses.
    let fake = Fake::new(Spec {
        iommu_group: Some(5),
        ..Spec::default()
    });
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    assert_eq!(p.access_path(), AccessPath::Sysfs);
}

#[test]
fn errors_are_std_errors_with_actionable_messages() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    let e = Error::NoHugepages {
        fix: "run scripts/setup-hugepages.sh 512 as root".into(),
    };
    is_error(&e);
    assert_eq!(
        e.to_string(),
        "no free 2 MiB hugepages reserved: run scripts/setup-hugepages.sh 512 as root"
    );
    let e = Error::IommuGroupNotViable { group: 12 };
    assert!(
        e.to_string()
            .contains("/sys/kernel/iommu_groups/12/devices"),
        "{e}"
    );
    let e = Error::Io {
        path: "/x".into(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn handles_are_send_sync_and_debug() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<LinuxPlatform>();
    let fake = Fake::new(Spec::default());
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    let text = format!("{p:?}");
    assert!(
        text.contains("0000:03:00.0") || text.contains("bus: 3"),
        "{text}"
    );
    assert_eq!(p.virt_to_phys(&0u8 as *const u8), None, "not DMA memory");
}

#[test]
fn interrupts_on_the_sysfs_path_are_refused_with_a_pointer_to_vfio() {
    use ixgbe_core::InterruptPlatform;
    let fake = Fake::new(Spec::default());
    let p = LinuxPlatform::open(&fake.addr, &fake.opts).unwrap();
    let err = p.enable_interrupts(2).unwrap_err();
    assert!(err.to_string().contains("need VFIO"), "{err}");
    assert!(err.to_string().contains("vfio-pci"), "{err}");
    let err = p
        .wait_interrupt(0, std::time::Duration::from_millis(1))
        .unwrap_err();
    assert!(err.to_string().contains("need VFIO"), "{err}");
}
