//! What operators do, whichever door they come through (the command line, the JSON API, the
//! web form): accounts, and changes to incidents. Validated once here, applied through the
//! audited store.
//!
//! May import: `incident`, `model`, `rules`, `auth`, `store`.

pub mod accounts;
pub mod change;
