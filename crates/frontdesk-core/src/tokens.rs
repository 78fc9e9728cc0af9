//! Secret tokens (sessions, invitations, password resets, API keys): 256 random
//! bits, base64url on the wire, only their SHA-256 in the database.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A freshly issued secret. `Debug` hides the value so it cannot reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// A new token: 32 random bytes from the operating system, base64url
    /// without padding (43 characters).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SecretToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a value already made of a fresh token (e.g. with a prefix added).
    pub fn from_exposed(value: String) -> Self {
        SecretToken(value)
    }

    /// The value to hand to the user (cookie, link, key); never store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The token's hex SHA-256, the form stored and looked up.
    pub fn hash(&self) -> String {
        hash_token(&self.0)
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

/// Hex SHA-256 of a presented token, for lookups.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_bits_and_store_only_a_digest() {
        let t = SecretToken::generate();
        let raw = URL_SAFE_NO_PAD.decode(t.expose()).expect("base64url");
        assert_eq!(raw.len(), 32);
        assert_ne!(t.hash(), t.expose());
        assert_eq!(t.hash().len(), 64);
        assert_eq!(format!("{t:?}"), "SecretToken(***)");
        assert_ne!(SecretToken::generate(), t);
    }
}
