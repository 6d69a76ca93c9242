//! The rules: pure decisions from the policy, the records and the time, all passed in. No
//! IO, no clock reads, no async runtime (the tidy test holds this).
//!
//! - [`policy`]: `collector.toml`'s incident policy, its validation and its lookups.
//! - [`live`]: the policy in force, swapped whole on reload.
//! - [`components`]: a public component's status from its checks and incidents.
//! - [`escalation`]: pages by policy step, repeats, lapsed acknowledgements, who hears what.
//! - [`reminders`]: reminder planning, legal deadlines and their clocks.
//! - [`plausible`]: numbers from the wire held to what an agent could have reached.
//! - [`enrollment`]: what an enrollment token may be made with, and whether one may be redeemed.
//! - [`seals`]: who may speak for an enrolled agent (its seal, its revocation, fresh heartbeats).
//! - [`compliance`]: regulatory report drafts and the yearly figures.
//! - [`words`]: every word a customer, subscriber or the public page reads, in Swedish and
//!   English, and the text rules of plain-text outputs (e-mail headers and bodies).
//! - [`time`]: RFC 3339 and calendar months.
//!
//! May import: `incident`, `model`.

pub mod compliance;
pub mod components;
pub mod enrollment;
pub mod escalation;
pub mod live;
pub mod plausible;
pub mod policy;
pub mod reminders;
pub mod seals;
pub mod time;
pub mod words;
