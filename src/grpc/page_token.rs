//! Opaque page tokens: a keyset cursor (never an offset), base64url-encoded
//! with the name of the listing it belongs to, so a token from one listing
//! or a tampered token is `INVALID_ARGUMENT`.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

/// Default page size when a request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest page size a caller may ask for.
pub const MAX_PAGE_SIZE: u64 = 500;

/// Validates `page_size`: 0 means the default; negative or above the maximum is invalid.
pub fn page_size(raw: i32) -> Result<u64> {
    match raw {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(Error::invalid("page_size", "must not be negative")),
        n if n as u64 > MAX_PAGE_SIZE => Err(Error::invalid("page_size", format!("must be at most {MAX_PAGE_SIZE}"))),
        n => Ok(n as u64),
    }
}

/// Encodes the keys of the last row of a page for listing `scope`.
pub fn encode(scope: &str, keys: &[i64]) -> String {
    let body = keys.iter().map(i64::to_string).collect::<Vec<_>>().join(":");
    URL_SAFE_NO_PAD.encode(format!("{scope}:{body}"))
}

/// Decodes a token of listing `scope` holding exactly `arity` keys; an empty
/// token is `None` (the first page).
pub fn decode(scope: &str, arity: usize, token: &str) -> Result<Option<Vec<i64>>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("page_token", "is not a token returned by this listing");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let rest = text.strip_prefix(scope).and_then(|r| r.strip_prefix(':')).ok_or_else(bad)?;
    let keys = rest.split(':').map(|k| k.parse::<i64>().map_err(|_| bad())).collect::<Result<Vec<_>>>()?;
    if keys.len() != arity {
        return Err(bad());
    }
    Ok(Some(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_other_scopes_and_garbage() {
        let token = encode("rules", &[42]);
        assert_eq!(decode("rules", 1, &token).ok().flatten(), Some(vec![42]));
        assert!(decode("history", 1, &token).is_err());
        assert!(decode("rules", 2, &token).is_err());
        assert!(decode("rules", 1, "!!!").is_err());
        assert!(decode("rules", 1, &URL_SAFE_NO_PAD.encode("rules:x")).is_err());
        assert_eq!(decode("rules", 1, "").ok().flatten(), None);
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(0).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(7).ok(), Some(7));
        assert!(page_size(-1).is_err());
        assert!(page_size(501).is_err());
    }
}
