//! `disk`: used space of one mounted file system, in percent, against Nagios thresholds.
//!
//! Config: `path` (mount point, default `/`), `warning` and `critical` (Nagios ranges on used %,
//! defaults 80 and 90). Used % is computed the way `df` does: used / (used + available), so
//! space reserved for root counts as unavailable.

use vakt_plugin_sdk::host::system::{self, Disk as MountedDisk};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, Key, Metric, Outcome, Thresholds, bytes_human, export_check,
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
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let path = config.text("path")?;
        let thresholds = config.thresholds()?;
        let disks = system::disks()?;
        evaluate(path, &thresholds, &disks)
    }
}

/// Pure part of the check, separate from host calls so it can be unit-tested natively.
fn evaluate(path: &str, thresholds: &Thresholds, disks: &[MountedDisk]) -> Result<Outcome, CheckError> {
    let disk = disks.iter().find(|d| d.mount_point == path).ok_or_else(|| {
        CheckError::BadConfig(format!("no file system is mounted at `{path}`"))
    })?;
    if disk.total == 0 {
        return Err(CheckError::Failed(format!("`{path}` reports a size of 0 bytes")));
    }
    // sysinfo's `total` includes blocks reserved for root; `df` leaves them out of both sides.
    let used = disk.total.saturating_sub(disk.available);
    let percent = used as f64 * 100.0 / disk.total as f64;
    let status = thresholds.evaluate(percent);
    let summary = format!(
        "{path} {percent:.0}% used ({} of {}, {} free)",
        bytes_human(used),
        bytes_human(disk.total),
        bytes_human(disk.available)
    );
    Ok(Outcome::new(status, summary)
        .metric(Metric::new("used", round2(percent)).unit("%").thresholds(thresholds).range(0.0, 100.0))
        .metric(Metric::new("used_bytes", used as f64).unit("B").range(0.0, disk.total as f64))
        .metric(Metric::new("free_bytes", disk.available as f64).unit("B").min(0.0)))
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

export_check!(Disk);

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_plugin_sdk::Status;

    fn mount(point: &str, total: u64, available: u64) -> MountedDisk {
        MountedDisk {
            mount_point: point.into(),
            device: "/dev/vda".into(),
            fs_type: "ext4".into(),
            total,
            available,
            read_only: false,
            removable: false,
        }
    }

    fn thresholds(w: &str, c: &str) -> Thresholds {
        Thresholds { warning: Some(w.parse().unwrap()), critical: Some(c.parse().unwrap()) }
    }

    #[test]
    fn status_follows_used_percent() {
        let disks = [mount("/", 100, 17), mount("/var", 100, 50)];
        let root = evaluate("/", &thresholds("80", "90"), &disks).unwrap();
        assert_eq!(root.status, Status::Warning);
        assert!(root.summary.starts_with("/ 83% used"), "{}", root.summary);
        assert_eq!(root.metrics[0].value, 83.0);
        assert_eq!((root.metrics[0].warn, root.metrics[0].crit), (Some(80.0), Some(90.0)));
        let var = evaluate("/var", &thresholds("80", "90"), &disks).unwrap();
        assert_eq!(var.status, Status::Ok);
        let full = evaluate("/", &thresholds("10", "20"), &disks).unwrap();
        assert_eq!(full.status, Status::Critical);
    }

    #[test]
    fn unknown_mount_point_is_bad_config() {
        let err = evaluate("/nope", &Thresholds::default(), &[mount("/", 1, 1)]).unwrap_err();
        assert!(matches!(err, CheckError::BadConfig(m) if m.contains("/nope")));
    }
}
