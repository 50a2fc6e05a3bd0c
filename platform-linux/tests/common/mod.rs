//! A fake sysfs/proc/dev tree in a temporary directory, standing in for the kernel's files.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use platform_linux::{OpenOptions, PciAddress};
use tempfile::TempDir;

/// Configuration of the fake device.
pub struct Spec {
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
    /// Name of the bound kernel driver, if any.
    pub driver: Option<&'static str>,
    /// Initial PCI command register.
    pub command: u16,
    pub bar_len: usize,
    pub free_hugepages: u32,
    /// Effective capabilities written to the fake `/proc/self/status`.
    pub cap_eff: u64,
    pub iommu_group: Option<u32>,
    /// Create `/dev/vfio/<group>` and `/dev/vfio/vfio` (as regular files).
    pub dev_vfio: bool,
    /// Contents of `/sys/kernel/iommu_groups/<group>/type` ("identity", "DMA", "DMA-FQ").
    pub iommu_type: &'static str,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            vendor: 0x8086,
            device: 0x10fb,
            class: 0x020000,
            driver: Some("ixgbe"),
            command: 0x0401,
            bar_len: 0x20000,
            free_hugepages: 8,
            cap_eff: 0x0000_01ff_ffff_ffff,
            iommu_group: None,
            dev_vfio: false,
            iommu_type: "identity",
        }
    }
}

pub struct Fake {
    pub tmp: TempDir,
    pub opts: OpenOptions,
    pub addr: PciAddress,
    pub dev_dir: PathBuf,
}

pub const ADDR: &str = "0000:03:00.0";

/// The configuration-space bytes the fake starts with: a recognisable pattern plus `command`.
pub fn initial_config(spec: &Spec) -> Vec<u8> {
    let mut config: Vec<u8> = (0..256u32).map(|i| (i * 7 + 3) as u8).collect();
    config[0..2].copy_from_slice(&spec.vendor.to_le_bytes());
    config[2..4].copy_from_slice(&spec.device.to_le_bytes());
    config[4..6].copy_from_slice(&spec.command.to_le_bytes());
    config
}

/// The BAR0 bytes the fake starts with: each 32-bit word holds `0xb0000000 | offset`.
pub fn initial_bar(len: usize) -> Vec<u8> {
    (0..len / 4)
        .flat_map(|i| (0xb000_0000u32 | (i as u32 * 4)).to_le_bytes())
        .collect()
}

impl Fake {
    pub fn new(spec: Spec) -> Fake {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let sys = root.join("sys");
        let addr: PciAddress = ADDR.parse().unwrap();
        let dev_dir = sys.join("bus/pci/devices").join(ADDR);
        fs::create_dir_all(&dev_dir).unwrap();
        fs::write(dev_dir.join("vendor"), format!("0x{:04x}\n", spec.vendor)).unwrap();
        fs::write(dev_dir.join("device"), format!("0x{:04x}\n", spec.device)).unwrap();
        fs::write(dev_dir.join("class"), format!("0x{:06x}\n", spec.class)).unwrap();
        fs::write(dev_dir.join("config"), initial_config(&spec)).unwrap();
        fs::write(dev_dir.join("resource0"), initial_bar(spec.bar_len)).unwrap();
        if let Some(driver) = spec.driver {
            let drv = sys.join("bus/pci/drivers").join(driver);
            fs::create_dir_all(&drv).unwrap();
            fs::write(drv.join("unbind"), b"").unwrap();
            fs::write(drv.join("bind"), b"").unwrap();
            symlink(&drv, dev_dir.join("driver")).unwrap();
        }
        if let Some(group) = spec.iommu_group {
            let g = sys.join("kernel/iommu_groups").join(group.to_string());
            fs::create_dir_all(&g).unwrap();
            fs::write(g.join("type"), format!("{}\n", spec.iommu_type)).unwrap();
            symlink(&g, dev_dir.join("iommu_group")).unwrap();
        }
        let huge = sys.join("kernel/mm/hugepages/hugepages-2048kB");
        fs::create_dir_all(&huge).unwrap();
        fs::write(
            huge.join("free_hugepages"),
            format!("{}\n", spec.free_hugepages),
        )
        .unwrap();
        fs::write(
            huge.join("nr_hugepages"),
            format!("{}\n", spec.free_hugepages),
        )
        .unwrap();

        let proc_self = root.join("proc/self");
        fs::create_dir_all(&proc_self).unwrap();
        fs::write(
            proc_self.join("status"),
            format!(
                "Name:\ttest\nCapInh:\t0000000000000000\nCapEff:\t{:016x}\n",
                spec.cap_eff
            ),
        )
        .unwrap();
        let dev = root.join("dev");
        fs::create_dir_all(&dev).unwrap();
        if spec.dev_vfio {
            let vfio = dev.join("vfio");
            fs::create_dir_all(&vfio).unwrap();
            fs::write(vfio.join("vfio"), b"").unwrap();
            if let Some(group) = spec.iommu_group {
                fs::write(vfio.join(group.to_string()), b"").unwrap();
            }
        }
        let opts = OpenOptions {
            sysfs_root: sys,
            dev_root: dev,
            proc_root: root.join("proc"),
        };
        Fake {
            tmp,
            opts,
            addr,
            dev_dir,
        }
    }

    /// Every regular file in the tree with its contents and modification time.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
        let mut out = Vec::new();
        walk(self.tmp.path(), &mut out);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn unbind_file(&self, driver: &str) -> PathBuf {
        self.opts
            .sysfs_root
            .join("bus/pci/drivers")
            .join(driver)
            .join("unbind")
    }

    pub fn config(&self) -> Vec<u8> {
        fs::read(self.dev_dir.join("config")).unwrap()
    }

    pub fn command(&self) -> u16 {
        let c = self.config();
        u16::from_le_bytes([c[4], c[5]])
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>, SystemTime)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let ty = entry.file_type().unwrap();
        let path = entry.path();
        if ty.is_dir() {
            walk(&path, out);
        } else if ty.is_file() {
            let meta = entry.metadata().unwrap();
            out.push((
                path.clone(),
                fs::read(&path).unwrap(),
                meta.modified().unwrap(),
            ));
        }
    }
}
