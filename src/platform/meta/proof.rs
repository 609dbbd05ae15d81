//! `appsecret_proof`: hex HMAC-SHA256 of the access token keyed by the app
//! secret, which Meta accepts as proof that a call comes from the app's server.
//! The HMAC is ring's, reached through rustls (already a dependency for TLS)
//! rather than a new crate.
use rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
use rustls::crypto::tls13::OkmBlock;

/// SHA-256's block size: longer HMAC keys are hashed first (RFC 2104).
const BLOCK_LEN: usize = 64;

/// Hex HMAC-SHA256(key = `app_secret`, message = `access_token`); `None` only if
/// the linked rustls lacks its SHA-256 suite, which the ring provider always has.
pub(crate) fn appsecret_proof(app_secret: &str, access_token: &str) -> Option<String> {
    hmac_sha256_hex(app_secret.as_bytes(), access_token.as_bytes())
}

fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> Option<String> {
    let suite = TLS13_AES_128_GCM_SHA256.tls13()?;
    let hashed;
    let key = if key.len() > BLOCK_LEN {
        hashed = suite.common.hash_provider.hash(key);
        hashed.as_ref()
    } else {
        key
    };
    let tag = suite.hkdf_provider.hmac_sign(&OkmBlock::new(key), message);
    Some(tag.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_vectors() {
        assert_eq!(
            appsecret_proof("Jefe", "what do ya want for nothing?").as_deref(),
            Some("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        // Test case 6: a 131-byte key is hashed before use.
        assert_eq!(
            hmac_sha256_hex(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First").as_deref(),
            Some("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
    }
}
