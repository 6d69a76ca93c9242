//! A plugin may use a capability only if it asked for it (its `info().needs`) **and** the
//! operator granted it. Standard plugins shipped inside the agent are granted `system`
//! without asking the operator; `net` and `fs` are always explicit.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::grant::{Capability, FsDenied, GrantSet};

/// What one run of one check may do.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    needs: BTreeSet<Capability>,
    grants: GrantSet,
}

/// Why a host call is refused, as the plugin will read it.
pub(crate) type Denied = String;

impl Access {
    pub(crate) fn new(needs: BTreeSet<Capability>, mut grants: GrantSet, standard: bool) -> Access {
        if standard && needs.contains(&Capability::System) {
            grants.push(crate::grant::Grant::System);
        }
        Access { needs, grants }
    }

    /// Asked for and granted at least once.
    pub(crate) fn require(&self, capability: Capability) -> Result<(), Denied> {
        if !self.needs.contains(&capability) {
            let asked: Vec<&str> = self.needs.iter().map(|c| c.as_str()).collect();
            return Err(format!(
                "the plugin did not ask for `{capability}` (it asks for: {})",
                if asked.is_empty() { "nothing".to_string() } else { asked.join(", ") }
            ));
        }
        if !self.grants.has(capability) {
            return Err(match capability {
                Capability::System => "`system` is not granted (grant it with --grant system)".to_string(),
                Capability::Net => "no `net` grant (grant targets with --grant net=HOST:PORT)".to_string(),
                Capability::Fs => "no `fs` grant (grant paths with --grant fs=/path)".to_string(),
            });
        }
        Ok(())
    }

    /// May a probe of `host:port` start? The resolved address is checked again by
    /// [`Access::net_addr`].
    pub(crate) fn net_target(&self, host: &str, port: u16) -> Result<(), Denied> {
        self.require(Capability::Net)?;
        if self.grants.net_allows_target(host, port) {
            Ok(())
        } else {
            Err(format!("no net grant covers {host}:{port} (grant it with --grant net={host}:{port})"))
        }
    }

    /// May the agent connect to `addr`, reached by asking for `host`? `own` holds the agent
    /// host's interface addresses, which only an address grant reaches.
    pub(crate) fn net_addr(&self, host: &str, addr: SocketAddr, own: &[IpAddr]) -> bool {
        self.grants.net_allows_addr(host, addr, own)
    }

    /// May the agent look `name` up? Only when a name grant covers it.
    pub(crate) fn net_name(&self, name: &str) -> bool {
        self.grants.net_allows_name(name)
    }

    /// The canonical path to stat, if `path` is covered by an fs grant.
    pub(crate) fn fs_path(&self, path: &str) -> Result<PathBuf, FsDenied> {
        self.require(Capability::Fs).map_err(FsDenied::Denied)?;
        if path.contains('\0') {
            return Err(FsDenied::Invalid("the path contains a NUL byte".into()));
        }
        self.grants.fs_allows(Path::new(path))
    }

    /// Whether an fs grant covers `path` by its text alone (answering from a facts file).
    pub(crate) fn fs_path_lexically(&self, path: &str) -> Result<PathBuf, FsDenied> {
        self.require(Capability::Fs).map_err(FsDenied::Denied)?;
        if path.contains('\0') {
            return Err(FsDenied::Invalid("the path contains a NUL byte".into()));
        }
        self.grants.fs_allows_lexically(Path::new(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Grant;

    fn access(needs: &[Capability], grants: &[&str], standard: bool) -> Access {
        let grants = GrantSet::new(grants.iter().map(|g| g.parse::<Grant>().unwrap()).collect());
        Access::new(needs.iter().copied().collect(), grants, standard)
    }

    #[test]
    fn asked_and_granted_are_both_required() {
        use Capability::*;
        // (needs, grants, standard, capability, allowed?)
        type Row<'a> = (&'a [Capability], &'a [&'a str], bool, Capability, bool);
        let table: &[Row<'_>] = &[
            (&[System], &["system"], false, System, true),
            (&[System], &[], false, System, false),
            (&[System], &[], true, System, true),
            (&[], &["system"], false, System, false),
            (&[], &["system"], true, System, false),
            (&[Net], &["net=db:5432"], false, Net, true),
            (&[Net], &["system"], true, Net, false),
            (&[Fs], &["fs=/var/backups"], false, Fs, true),
            (&[Fs], &[], true, Fs, false),
            (&[Net, Fs], &["net=*:*"], false, Fs, false),
        ];
        for (needs, grants, standard, capability, want) in table {
            let got = access(needs, grants, *standard).require(*capability).is_ok();
            assert_eq!(got, *want, "needs {needs:?}, grants {grants:?}, standard {standard}, {capability}");
        }
    }

    #[test]
    fn denial_says_what_to_grant() {
        let a = access(&[Capability::Net], &["net=db:5432"], false);
        assert!(a.net_target("db", 5432).is_ok());
        let why = a.net_target("db", 22).unwrap_err();
        assert_eq!(why, "no net grant covers db:22 (grant it with --grant net=db:22)");
        let why = access(&[], &["net=*:*"], false).net_target("db", 1).unwrap_err();
        assert_eq!(why, "the plugin did not ask for `net` (it asks for: nothing)");
    }
}
