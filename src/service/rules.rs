//! Rule use cases: create, read, list, change and delete scaling rules.
use sea_orm::TransactionTrait;

use super::AppState;
use crate::domain::ids::AccountId;
use crate::domain::rule::{NewRule, RuleSettings, ScalingRule};
use crate::error::{Error, Result};
use crate::persistence::rules;

/// Creates a rule after validating it. When its scope already has a rule
/// (often the "Default Auto-Scaling" rule a cycle created), the
/// `AlreadyExists` error names that rule, so the caller can update it.
pub async fn create(state: &AppState, rule: NewRule) -> Result<ScalingRule> {
    rule.settings.validate()?;
    let (account, campaign) = (rule.account_id.clone(), rule.campaign_id.clone());
    match rules::create(&state.db, rule).await {
        Err(Error::AlreadyExists { kind, id }) => {
            let existing = rules::for_accounts(&state.db, std::slice::from_ref(&account)).await?;
            let holder = existing.iter().find(|r| r.campaign_id == campaign);
            Err(Error::AlreadyExists {
                kind,
                id: match holder {
                    Some(r) => format!("{id} (rule {}, {:?}; change it with UpdateRule)", r.id, r.settings.name),
                    None => id,
                },
            })
        }
        other => other,
    }
}

/// One rule.
pub async fn get(state: &AppState, id: i64) -> Result<ScalingRule> {
    rules::get(&state.db, id).await
}

/// A page of rules after `after_id` and whether more remain.
pub async fn list(
    state: &AppState,
    account: Option<&AccountId>,
    after_id: i64,
    page_size: u64,
) -> Result<(Vec<ScalingRule>, bool)> {
    let mut page = rules::list(&state.db, account, after_id, page_size + 1).await?;
    let more = page.len() as u64 > page_size;
    page.truncate(page_size as usize);
    Ok((page, more))
}

/// Changes a rule: `change` edits the stored settings; the result is validated
/// and saved in one transaction, so a failed change writes nothing.
pub async fn update(
    state: &AppState,
    id: i64,
    updated_by: &str,
    change: impl FnOnce(&mut RuleSettings) -> Result<()>,
) -> Result<ScalingRule> {
    let txn = state.db.begin().await?;
    let mut settings = rules::get(&txn, id).await?.settings;
    change(&mut settings)?;
    settings.validate()?;
    let updated = rules::update(&txn, id, &settings, updated_by).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes a rule.
pub async fn delete(state: &AppState, id: i64) -> Result<()> {
    rules::delete(&state.db, id).await
}
