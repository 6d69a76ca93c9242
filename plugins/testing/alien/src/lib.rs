//! `alien`: imports `evil:alien/backdoor`, which no agent provides. For the load-error test.

wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "evil:alien/alien",
    generate_all,
});

use vakt::check::types::Status;

struct Alien;

impl Guest for Alien {
    fn info() -> Info {
        Info {
            name: "alien".into(),
            version: "0.0.0".into(),
            description: "imports a backdoor".into(),
            needs: vec![],
            config: vec![],
        }
    }

    fn run(_config: Vec<(String, String)>) -> Result<Outcome, CheckError> {
        let door = evil::alien::backdoor::open();
        Ok(Outcome { status: Status::Ok, summary: format!("door {door}"), details: None, metrics: vec![] })
    }
}

export!(Alien);
