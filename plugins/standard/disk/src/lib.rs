//! `disk`: used space of one mounted file system, in percent, against Nagios thresholds.
//!
//! Config: `path` (mount point, default `/`), `warning` and `critical` (Nagios ranges on used %,
//! defaults 80 and 90), `inode-warning` and `inode-critical` (Nagios ranges on used inodes %,
//! optional). Used % is computed the way `df` does: used / (used + available), so space
//! reserved for root counts as unavailable.

use vakt_plugin_sdk::host::system::{self, Disk as MountedDisk};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, Key, Metric, Outcome, Status, Thresholds, bytes_human, export_check, worst,
};

struct Disk;

impl Check for Disk {
    const NAME: &'static str = "disk";
    const DESCRIPTION: &'static str = "Used space of a mounted file system, in percent.";
    const NEEDS: &'static [Capability] = &[Capability::System];
    const CONFIG: &'static [Key] = &[
        Key::with_default("path", "/", "mount point to check, e.g. /var"),
        Key::with_default("warning", "80", "warning range for used space, % (Nagios range)"),
        Key::with_default("critical", "90", "critical range for used space, % (Nagios range)"),
        Key::optional("inode-warning", "warning range for used inodes, % (Nagios range)"),
        Key::optional("inode-critical", "critical range for used inodes, % (Nagios range)"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let path = config.text("path")?;
        let thresholds = config.thresholds()?;
        let inodes =
            Thresholds { warning: config.threshold("inode-warning")?, critical: config.threshold("inode-critical")? };
        let disks = system::disks()?;
        evaluate(path, &thresholds, &inodes, &disks)
    }
}

/// Pure part of the check, separate from host calls so it can be unit-tested natively.
fn evaluate(
    path: &str,
    thresholds: &Thresholds,
    inodes: &Thresholds,
    disks: &[MountedDisk],
) -> Result<Outcome, CheckError> {
    let disk = disks
        .iter()
        .find(|d| d.mount_point == path)
        .ok_or_else(|| CheckError::BadConfig(format!("no file system is mounted at `{path}`")))?;
    let usable = disk.used + disk.available;
    if usable == 0 {
        return Err(CheckError::Failed(format!("`{path}` reports a size of 0 bytes")));
    }
    let percent = disk.used as f64 * 100.0 / usable as f64;
    let mut status = thresholds.evaluate(percent);
    let mut summary = format!(
        "{path} {percent:.0}% used ({} of {}, {} free)",
        bytes_human(disk.used),
        bytes_human(usable),
        bytes_human(disk.available)
    );
    let mut outcome = Outcome::new(status, String::new())
        .metric(Metric::new("used", round2(percent)).unit("%").thresholds(thresholds).range(0.0, 100.0))
        .metric(Metric::new("used_bytes", disk.used as f64).unit("B").range(0.0, disk.total as f64))
        .metric(Metric::new("free_bytes", disk.available as f64).unit("B").min(0.0));
    if disk.inodes_total > 0 {
        let inode_percent =
            (disk.inodes_total - disk.inodes_free.min(disk.inodes_total)) as f64 * 100.0 / disk.inodes_total as f64;
        let inode_status = inodes.evaluate(inode_percent);
        if inode_status != Status::Ok {
            summary.push_str(&format!(", inodes {inode_percent:.0}% used"));
        }
        status = worst(status, inode_status);
        outcome = outcome
            .metric(Metric::new("inodes_used", round2(inode_percent)).unit("%").thresholds(inodes).range(0.0, 100.0));
    }
    outcome.status = status;
    outcome.summary = summary;
    Ok(outcome)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

export_check!(Disk);

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &str, used: u64, available: u64) -> MountedDisk {
        MountedDisk {
            mount_point: point.into(),
            device: "/dev/vda".into(),
            fs_type: "ext4".into(),
            // Reserved blocks make the size larger than used + available, as on ext4.
            total: (used + available) * 105 / 100,
            used,
            available,
            inodes_total: 1000,
            inodes_free: 100,
            read_only: false,
            removable: false,
        }
    }

    fn thresholds(w: &str, c: &str) -> Thresholds {
        Thresholds { warning: Some(w.parse().unwrap()), critical: Some(c.parse().unwrap()) }
    }

    #[test]
    fn status_follows_used_percent() {
        let disks = [mount("/", 83, 17), mount("/var", 50, 50)];
        let root = evaluate("/", &thresholds("80", "90"), &Thresholds::default(), &disks).unwrap();
        assert_eq!(root.status, Status::Warning);
        assert!(root.summary.starts_with("/ 83% used"), "{}", root.summary);
        assert_eq!(root.metrics[0].value, 83.0);
        assert_eq!((root.metrics[0].warn, root.metrics[0].crit), (Some(80.0), Some(90.0)));
        let var = evaluate("/var", &thresholds("80", "90"), &Thresholds::default(), &disks).unwrap();
        assert_eq!(var.status, Status::Ok);
        let full = evaluate("/", &thresholds("10", "20"), &Thresholds::default(), &disks).unwrap();
        assert_eq!(full.status, Status::Critical);
    }

    #[test]
    fn inode_thresholds_raise_the_status() {
        let disks = [mount("/", 10, 90)];
        let out = evaluate("/", &thresholds("80", "90"), &thresholds("80", "95"), &disks).unwrap();
        assert_eq!(out.status, Status::Warning);
        assert!(out.summary.ends_with("inodes 90% used"), "{}", out.summary);
        assert_eq!(out.metrics[3].value, 90.0);
    }

    #[test]
    fn unknown_mount_point_is_bad_config() {
        let err = evaluate("/nope", &Thresholds::default(), &Thresholds::default(), &[mount("/", 1, 1)]).unwrap_err();
        assert!(matches!(err, CheckError::BadConfig(m) if m.contains("/nope")));
    }
}
