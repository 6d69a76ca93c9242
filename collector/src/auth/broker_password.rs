//! Per-agent passwords for brokers without client certificates, in Mosquitto's password-file
//! form: `user:$7$ITERATIONS$SALT$HASH`, PBKDF2-HMAC-SHA512 with a 12-byte salt (what
//! `mosquitto_passwd` writes). The broker keeps only the hash; the password goes to the
//! agent's `password_file` and is shown nowhere else. The generated ACL's `%u` is then the
//! agent id, as with certificates.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `mosquitto_passwd`'s iteration count. The passwords are 256-bit random secrets, so the
/// count guards nothing a guesser could use; more would only slow the broker's logins.
pub const ITERATIONS: u32 = 101;

/// The password-file line for `user` with `password` and `salt`.
pub fn mosquitto_line(user: &str, password: &str, salt: &[u8; 12]) -> String {
    let mut hash = [0u8; 64];
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA512, iterations, salt, password.as_bytes(), &mut hash);
    format!("{user}:$7${ITERATIONS}${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_what_mosquitto_passwd_writes() {
        // From `mosquitto_passwd -c -b pw web-01 'correct horse'` (Mosquitto 2.0.11).
        let written = "web-01:$7$101$0eWlL2rQ+YFU9Ynt$BMm/RAV/uQ3wnh2x7V7uhMy5qa9BiONvCtc0sPURJoTJKSDtKQ9ZygVsdDdFeK9+Gy4cr/X0QGZgyy7vavLNKg==";
        let salt: [u8; 12] = STANDARD.decode("0eWlL2rQ+YFU9Ynt").unwrap().try_into().unwrap();
        assert_eq!(mosquitto_line("web-01", "correct horse", &salt), written);
        assert_ne!(mosquitto_line("web-01", "correct horsf", &salt), written);
    }
}
