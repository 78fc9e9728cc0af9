//! Secrets that must be read back (TOTP seeds, later identity providers'
//! client secrets) are sealed with ChaCha20-Poly1305 under a key derived from
//! the host's `secret_key` with HKDF-SHA256, one key per purpose. Each sealed
//! value is bound to a context (for example `totp:<user id>`), so a value
//! copied into another row does not open.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

use crate::error::{CoreError, CoreResult};

const VERSION: &str = "v1.";
const NONCE_LEN: usize = 12;

/// A key for one purpose. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// The key for `purpose` derived from the host's secret key (at least 32
    /// bytes, the same rule as for the sign-in forms' key).
    pub fn derive(secret_key: &[u8], purpose: &str) -> CoreResult<SecretBox> {
        if secret_key.len() < 32 {
            return Err(CoreError::Config(
                "secret_key must be at least 32 bytes".into(),
            ));
        }
        let hk = Hkdf::<Sha256>::new(Some(b"frontdesk sealed secrets"), secret_key);
        let mut key = [0u8; 32];
        hk.expand(purpose.as_bytes(), &mut key)
            .map_err(|_| CoreError::Config("key derivation failed".into()))?;
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// `plain` sealed for `context`: `v1.` and base64url of nonce and ciphertext.
    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .expect("sealing cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed for `context`. A value sealed under another key
    /// (the host changed `secret_key`) or for another context is an error
    /// that says so, never a wrong secret.
    pub fn open(&self, context: &str, sealed: &str) -> CoreResult<Vec<u8>> {
        let bad = || {
            CoreError::Config(
                "a sealed secret cannot be opened: it was sealed under another secret_key, \
                 or for another record"
                    .into(),
            )
        };
        let raw = sealed
            .strip_prefix(VERSION)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .ok_or_else(bad)?;
        if raw.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let a = SecretBox::derive(&[7u8; 32], "mfa-totp").expect("ok");
        let sealed = a.seal("totp:1", b"seed bytes");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("seed"));
        assert_eq!(a.open("totp:1", &sealed).expect("ok"), b"seed bytes");
        // Another record, another purpose, another secret key: refused.
        assert!(a.open("totp:2", &sealed).is_err());
        let other_purpose = SecretBox::derive(&[7u8; 32], "sso-client").expect("ok");
        assert!(other_purpose.open("totp:1", &sealed).is_err());
        let other_key = SecretBox::derive(&[8u8; 32], "mfa-totp").expect("ok");
        assert!(other_key.open("totp:1", &sealed).is_err());
        // Two seals of one value differ (fresh nonce).
        assert_ne!(a.seal("totp:1", b"seed bytes"), sealed);
        // Garbage and a short key are clear errors.
        assert!(a.open("totp:1", "v1.AAAA").is_err());
        assert!(a.open("totp:1", "plain").is_err());
        assert!(SecretBox::derive(&[1u8; 16], "mfa-totp").is_err());
        assert_eq!(format!("{a:?}"), "SecretBox(***)");
    }
}
