//! Who may call: API tokens, configured only as SHA-256 hashes, each naming a
//! principal and a [`Role`]. The lookup compares in constant time. Transport
//! concerns (metadata, status codes, the method table) live in `grpc::auth`.
use std::fmt;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Longest principal name, in characters.
pub const MAX_PRINCIPAL_CHARS: usize = 100;

/// What a principal may do. Roles are not a ladder: an approver may decide
/// actions but not change rules, an operator the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reads rules, actions, the dashboard and reports; watches the stream.
    Viewer,
    /// Viewer, plus rules, evaluations, cycles and learning.
    Operator,
    /// Viewer, plus approving and rejecting actions.
    Approver,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Approver, Role::Admin];

    /// The name used in token lists.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }

    /// Inverse of [`as_str`](Self::as_str), ignoring ASCII case.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(raw))
    }

    /// Whether a holder of this role may do what `required` may.
    pub fn grants(self, required: Role) -> bool {
        match self {
            Self::Admin => true,
            Self::Operator | Self::Approver => required == self || required == Self::Viewer,
            Self::Viewer => required == Self::Viewer,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The name recorded as `created_by`, `updated_by` and `decided_by`.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// One configured token: who it is and the SHA-256 of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// The principal the token stands for.
    pub principal: Principal,
    sha256: [u8; 32],
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is not the secret, but it has no business in logs either.
        f.debug_struct("TokenEntry").field("principal", &self.principal).finish_non_exhaustive()
    }
}

/// A token list entry that cannot be used; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {line}: {reason}")]
pub struct TokenListError {
    /// Which entry (line of the file, or position in the `;`-separated list).
    pub line: usize,
    /// What is wrong (never the entry's text: it may be a pasted secret).
    pub reason: String,
}

/// The configured tokens. Empty means authentication is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenTable {
    entries: Vec<TokenEntry>,
}

impl TokenTable {
    /// Parses entries `name role sha256hex` separated by `separator` (a
    /// newline for files, `;` for the environment). Blank entries and entries
    /// starting with `#` are skipped.
    pub fn parse(text: &str, separator: char) -> Result<Self, TokenListError> {
        let mut table = Self::default();
        for (index, raw) in text.split(separator).enumerate() {
            let line = index + 1;
            let entry = raw.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let error = |reason: String| TokenListError { line, reason };
            let fields: Vec<&str> = entry.split_whitespace().collect();
            let [name, role, hash] = fields[..] else {
                return Err(error(format!(
                    "expected 3 fields `name role sha256hex`, found {} (the token itself never goes here, only its \
                     SHA-256)",
                    fields.len()
                )));
            };
            if name.chars().count() > MAX_PRINCIPAL_CHARS || name.chars().any(char::is_control) {
                return Err(error(format!("the name must be 1 to {MAX_PRINCIPAL_CHARS} printable characters")));
            }
            let role = Role::parse(role)
                .ok_or_else(|| error(format!("unknown role {role:?}: use viewer, operator, approver or admin")))?;
            let sha256 = parse_sha256_hex(hash)
                .ok_or_else(|| error("the third field must be 64 hex digits (the token's SHA-256)".into()))?;
            if table.entries.iter().any(|e| e.sha256 == sha256) {
                return Err(error("the same token hash is listed twice".into()));
            }
            table.entries.push(TokenEntry { principal: Principal { name: name.to_owned(), role }, sha256 });
        }
        Ok(table)
    }

    /// Adds every entry of `other` (hashes must stay unique).
    pub fn merge(&mut self, other: TokenTable) -> Result<(), String> {
        for entry in other.entries {
            if self.entries.iter().any(|e| e.sha256 == entry.sha256) {
                return Err(format!("the token of {} is configured twice", entry.principal.name));
            }
            self.entries.push(entry);
        }
        Ok(())
    }

    /// A table from `(name, role, token)` triples: hashes the tokens (tests
    /// and tools; servers are configured with hashes only).
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = (&'a str, Role, &'a str)>) -> Self {
        let entries = tokens
            .into_iter()
            .map(|(name, role, token)| TokenEntry {
                principal: Principal { name: name.to_owned(), role },
                sha256: sha256(token),
            })
            .collect();
        Self { entries }
    }

    /// Whether no token is configured (authentication off).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The principal whose token is `token`. Every configured hash is
    /// compared, in constant time, whether or not an earlier one matched.
    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        let presented = sha256(token);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, entry) in self.entries.iter().enumerate() {
            let matches = presented.ct_eq(&entry.sha256);
            index.conditional_assign(&(i as u64), matches);
            found |= matches;
        }
        bool::from(found).then(|| &self.entries[index as usize].principal)
    }
}

/// SHA-256 of `token`, as configured: 64 lowercase hex digits.
pub fn token_sha256_hex(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in sha256(token) {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_sha256_hex(raw: &str) -> Option<[u8; 32]> {
    let bytes = raw.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_a_known_vector() {
        assert_eq!(token_sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn parses_entries_and_authenticates_by_hash() {
        let text = format!(
            "# ops team\n\nalice operator {}\nbob APPROVER {}\n",
            token_sha256_hex("alice-secret"),
            token_sha256_hex("bob-secret").to_uppercase()
        );
        let table = TokenTable::parse(&text, '\n').expect("valid list");
        assert_eq!(table.len(), 2);
        let alice = table.authenticate("alice-secret").expect("alice");
        assert_eq!((alice.name.as_str(), alice.role), ("alice", Role::Operator));
        assert_eq!(table.authenticate("bob-secret").map(|p| p.role), Some(Role::Approver));
        assert_eq!(table.authenticate("alice-secret "), None);
        assert_eq!(table.authenticate(""), None);
    }

    #[test]
    fn bad_entries_name_their_position_and_never_echo_the_text() {
        let hash = token_sha256_hex("t");
        let cases = [
            (format!("a viewer {hash};b root {hash}"), 2, "unknown role"),
            ("a viewer my-plain-token".to_owned(), 1, "64 hex digits"),
            (format!(";;a viewer {hash} extra"), 3, "expected 3 fields"),
            (format!("a viewer {hash};b admin {hash}"), 2, "twice"),
            (format!("a viewer {}", "g".repeat(64)), 1, "64 hex digits"),
        ];
        for (text, line, reason) in cases {
            let err = TokenTable::parse(&text, ';').expect_err(&text);
            assert_eq!(err.line, line, "{text}");
            assert!(err.reason.contains(reason), "{text}: {err}");
            assert!(!err.to_string().contains("my-plain-token"));
        }
    }

    #[test]
    fn roles_grant_their_own_rights_and_viewing() {
        use Role::*;
        let granted = |role: Role| Role::ALL.into_iter().filter(|r| role.grants(*r)).collect::<Vec<_>>();
        assert_eq!(granted(Viewer), [Viewer]);
        assert_eq!(granted(Operator), [Viewer, Operator]);
        assert_eq!(granted(Approver), [Viewer, Approver]);
        assert_eq!(granted(Admin), Role::ALL);
    }
}
