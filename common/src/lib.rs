//! What `vakt-agent` and `vakt-collector` both need around the wire contract (`protocol`):
//!
//! - [`mqtt`]: the broker's URL, credentials and TLS, checked and loaded once from a config
//!   file, and the rumqttc options built from them.
//! - [`log_limit`]: a rate limit for log lines, per place in the code.
//! - [`report`]: an error with every cause, on one line.
//!
//! Nothing here knows WebAssembly or the database: the collector links it without the plugin
//! runtime.

pub mod log_limit;
pub mod mqtt;

/// An error and its causes as one line: `loading plugin x: reading file: not found`. A cause
/// that an error already prints in its own message is not printed again.
pub fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::report;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn every_cause_once() {
        let chain = E("loading x", Some(Box::new(E("reading file", Some(Box::new(E("not found", None)))))));
        assert_eq!(report(&chain), "loading x: reading file: not found");
        // An error that prints its source itself (thiserror's `{0}` with `#[source]`).
        let repeats = E("reading x: denied", Some(Box::new(E("denied", None))));
        assert_eq!(report(&repeats), "reading x: denied");
    }
}
