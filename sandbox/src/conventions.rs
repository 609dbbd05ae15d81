//! Meta's conventions as the sandbox models them: the batch size limit, ad
//! account ids, the currencies counted in whole units, how amounts are
//! written and `appsecret_proof`. Written here again rather than borrowed from
//! the client on purpose: the sandbox is an independent model of Meta, so a
//! client bug (a wrong offset, a badly written amount, a wrong proof) shows up
//! as a disagreement in the tests instead of being shared by both sides.
use sha2::{Digest, Sha256};

/// Meta's limit on operations in one batch request.
pub(crate) const MAX_BATCH_OPS: usize = 50;

/// Currencies Meta counts in whole units (offset 1) in its currency table:
/// a budget of 1 is 1 JPY. TWD is one of them there, unlike in ISO 4217.
const OFFSET_ONE: [&str; 11] = ["CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"];

/// Minor units per major unit of `currency` in Meta's table: 1 or 100.
pub(crate) fn minor_unit_offset(currency: &str) -> i64 {
    if OFFSET_ONE.contains(&currency) { 1 } else { 100 }
}

/// Whether `id` is an ad account id as Meta writes it: `act_` and 1 to 32 digits.
pub(crate) fn is_account_id(id: &str) -> bool {
    id.strip_prefix("act_")
        .is_some_and(|digits| !digits.is_empty() && digits.len() <= 32 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// An amount in minor units as Meta writes major units in insights: `"100.50"`
/// for offset 100, `"1500"` for offset 1.
pub(crate) fn minor_to_major(amount_minor: i64, offset: i64) -> String {
    if offset <= 1 {
        return amount_minor.to_string();
    }
    let decimals = offset.ilog10() as usize;
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    let offset = offset.unsigned_abs();
    format!("{sign}{}.{:0decimals$}", abs / offset, abs % offset)
}

/// SHA-256's block size: longer HMAC keys are hashed first (RFC 2104).
const BLOCK_LEN: usize = 64;

/// The `appsecret_proof` Meta expects: hex HMAC-SHA256 of the access token
/// keyed by the app secret.
pub(crate) fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    hmac_sha256_hex(app_secret.as_bytes(), access_token.as_bytes())
}

/// HMAC-SHA256 (RFC 2104) in hex.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; BLOCK_LEN];
    if key.len() > BLOCK_LEN {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    let outer = Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_match_rfc_4231_vectors() {
        // Test case 2 (a short key) and test case 6 (a key longer than a block).
        assert_eq!(
            appsecret_proof("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_sha256_hex(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn amounts_and_ids_are_written_as_meta_writes_them() {
        assert_eq!(minor_to_major(10_050, 100), "100.50");
        assert_eq!(minor_to_major(-5, 100), "-0.05");
        assert_eq!(minor_to_major(1_500, 1), "1500");
        assert_eq!(minor_unit_offset("JPY"), 1);
        assert_eq!(minor_unit_offset("TWD"), 1);
        assert_eq!(minor_unit_offset("USD"), 100);
        assert!(is_account_id("act_1000001"));
        assert!(!is_account_id("act_"));
        assert!(!is_account_id("1000001"));
        assert!(!is_account_id(&format!("act_{}", "1".repeat(33))));
    }
}
