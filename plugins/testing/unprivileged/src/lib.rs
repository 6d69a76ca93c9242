//! `unprivileged`: asks for no capability. Returns OK at once, which makes it the trivial
//! plugin of the instantiate+run benchmark; with `try` set it calls a host function it did not
//! ask for, which the agent must deny whatever the operator granted.

use vakt_plugin_sdk::host::{fs, net, system};
use vakt_plugin_sdk::{Check, CheckError, Config, Key, Outcome, Status, export_check};

struct Unprivileged;

impl Check for Unprivileged {
    const NAME: &'static str = "unprivileged";
    const DESCRIPTION: &'static str = "Asks for nothing; optionally tries host calls anyway.";
    const CONFIG: &'static [Key] = &[Key::optional("try", "system, net or fs: call it without asking")];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        match config.get("try") {
            None => Ok(Outcome::new(Status::Ok, "nothing to do")),
            Some("system") => {
                system::load().map(|l| Outcome::new(Status::Ok, format!("load {}", l.one))).map_err(Into::into)
            }
            Some("net") => {
                net::tcp_connect("127.0.0.1", 9, 100).map(|_| Outcome::new(Status::Ok, "connected")).map_err(Into::into)
            }
            Some("fs") => fs::stat("/").map(|_| Outcome::new(Status::Ok, "stat")).map_err(Into::into),
            Some(other) => Err(CheckError::BadConfig(format!("unknown `try` value `{other}`"))),
        }
    }
}

export_check!(Unprivileged);
