//! Validated identifiers of ad accounts and campaigns.
use std::fmt;

use crate::domain::invalid::{Invalid, Result};

/// An ad account id in Meta's path form, `act_<digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Parses `act_<digits>` (1 to 32 digits); `field` names the input in errors.
    pub fn parse(raw: &str, field: &str) -> Result<Self> {
        let digits =
            raw.strip_prefix("act_").ok_or_else(|| Invalid::new(field, "must be \"act_\" followed by digits"))?;
        if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(field, "must be \"act_\" followed by 1 to 32 digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as Meta writes it in paths (`act_123`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A campaign id: Meta's numeric object id, as a string of digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CampaignId(String);

impl CampaignId {
    /// Parses 1 to 32 digits; `field` names the input in errors.
    pub fn parse(raw: &str, field: &str) -> Result<Self> {
        if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(field, "must be 1 to 32 digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_need_the_act_prefix_and_digits() {
        assert!(AccountId::parse("act_123", "account_id").is_ok());
        for bad in ["", "act_", "123", "act_12a", "ACT_1", "act_ 1", &format!("act_{}", "9".repeat(33))] {
            assert!(AccountId::parse(bad, "account_id").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn campaign_ids_are_digits() {
        assert!(CampaignId::parse("120210", "campaign_id").is_ok());
        for bad in ["", "12x", "-1", " 1"] {
            assert!(CampaignId::parse(bad, "campaign_id").is_err(), "{bad:?} accepted");
        }
    }
}
