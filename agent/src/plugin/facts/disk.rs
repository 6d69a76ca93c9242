//! Mounted file systems and their space. sysinfo lists the mounts; `statvfs` gives the block
//! and inode counts, so "used" and "available" mean what they mean to `df`.

use tokio::time::Instant;

use super::{FactError, Facts};
use crate::plugin::bindings::system::Disk;

impl Facts {
    pub(crate) fn disks(&self) -> Result<Vec<Disk>, FactError> {
        self.with(|inner| {
            if self.stale(inner.disks_at) {
                // Only the mount list (and whether each is removable) from sysinfo: the sizes
                // come from our own statvfs below, so sysinfo need not call it as well.
                inner.disks.refresh_specifics(true, sysinfo::DiskRefreshKind::nothing().with_kind());
                inner.disks_at = Some(Instant::now());
            }
            Ok(inner
                .disks
                .iter()
                .map(|d| {
                    let mut disk = Disk {
                        mount_point: d.mount_point().to_string_lossy().into_owned(),
                        device: d.name().to_string_lossy().into_owned(),
                        fs_type: d.file_system().to_string_lossy().into_owned(),
                        total: d.total_space(),
                        used: d.total_space().saturating_sub(d.available_space()),
                        available: d.available_space(),
                        inodes_total: 0,
                        inodes_free: 0,
                        read_only: d.is_read_only(),
                        removable: d.is_removable(),
                    };
                    // A mount that vanished between listing and statvfs is reported with what
                    // sysinfo knew of it (zeros when it did not read the sizes).
                    if let Ok(vfs) = rustix::fs::statvfs(d.mount_point()) {
                        let fragment = vfs.f_frsize.max(1);
                        disk.total = vfs.f_blocks.saturating_mul(fragment);
                        disk.used = vfs.f_blocks.saturating_sub(vfs.f_bfree).saturating_mul(fragment);
                        disk.available = vfs.f_bavail.saturating_mul(fragment);
                        disk.inodes_total = vfs.f_files;
                        disk.inodes_free = vfs.f_ffree;
                    }
                    disk
                })
                .collect())
        })
    }
}
