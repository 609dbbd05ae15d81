//! `RulesService`: create, read, list, update and delete scaling rules.
use tonic::{Request, Response, Status};

use super::convert::{self, within};
use super::page_token;
use crate::domain::ids::AccountId;
use crate::domain::rule::NewRule;
use crate::error::Error;
use crate::pb::{self, rules_service_server::RulesService};
use crate::service::{self, AppState};

/// Implements `autoscaler.v1.RulesService`.
#[derive(Clone)]
pub struct RulesApi {
    state: AppState,
}

impl RulesApi {
    /// A handler over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

const LIST_SCOPE: &str = "rules";

#[tonic::async_trait]
impl RulesService for RulesApi {
    #[tracing::instrument(skip_all)]
    async fn create_rule(
        &self,
        request: Request<pb::CreateRuleRequest>,
    ) -> Result<Response<pb::CreateRuleResponse>, Status> {
        let created_by = super::principal(&request);
        let rule = request.into_inner().rule.ok_or_else(|| Error::invalid("rule", "is required"))?;
        let (account_id, campaign_id) = convert::rule_scope(&rule).map_err(within("rule"))?;
        let settings = convert::rule_settings_for_create(&rule).map_err(within("rule"))?;
        let new_rule = NewRule { account_id, campaign_id, settings, created_by };
        let stored = service::rules::create(&self.state, new_rule).await.map_err(within("rule"))?;
        tracing::info!(rule_id = stored.id, account_id = %stored.account_id, "rule created");
        Ok(Response::new(pb::CreateRuleResponse { rule: Some(convert::rule_to_pb(&stored)) }))
    }

    #[tracing::instrument(skip_all, fields(rule_id = request.get_ref().id))]
    async fn get_rule(&self, request: Request<pb::GetRuleRequest>) -> Result<Response<pb::GetRuleResponse>, Status> {
        let rule = service::rules::get(&self.state, request.get_ref().id).await?;
        Ok(Response::new(pb::GetRuleResponse { rule: Some(convert::rule_to_pb(&rule)) }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_rules(
        &self,
        request: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesResponse>, Status> {
        let req = request.into_inner();
        let account = match req.account_id.as_str() {
            "" => None,
            raw => Some(AccountId::parse(raw, "account_id")?),
        };
        let page_size = page_token::page_size(req.page_size)?;
        let after_id = page_token::decode(LIST_SCOPE, 1, &req.page_token)?.map_or(0, |keys| keys[0]);
        let (rules, more) = service::rules::list(&self.state, account.as_ref(), after_id, page_size).await?;
        let next_page_token = match rules.last() {
            Some(last) if more => page_token::encode(LIST_SCOPE, &[last.id]),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListRulesResponse {
            rules: rules.iter().map(convert::rule_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_rule(
        &self,
        request: Request<pb::UpdateRuleRequest>,
    ) -> Result<Response<pb::UpdateRuleResponse>, Status> {
        let updated_by = super::principal(&request);
        let req = request.into_inner();
        let rule = req.rule.ok_or_else(|| Error::invalid("rule", "is required"))?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Error::invalid("update_mask", "must name at least one field").into());
        }
        // Check every path before touching the database, so a bad mask writes nothing.
        for path in &paths {
            if path != "*" && !convert::RULE_SETTINGS_PATHS.contains(&path.as_str()) {
                let reason = if convert::RULE_IMMUTABLE_PATHS.contains(&path.as_str()) {
                    format!("{path} cannot be changed")
                } else {
                    format!("unknown field {path:?}")
                };
                return Err(Error::invalid("update_mask", reason).into());
            }
        }
        let updated = service::rules::update(&self.state, rule.id, &updated_by, |settings| {
            let currency = if rule.currency.is_empty() { settings.currency.clone() } else { rule.currency.clone() };
            let mut defaults = convert::default_settings(&currency);
            defaults.name = settings.name.clone();
            for path in &paths {
                if path == "*" {
                    for p in convert::RULE_SETTINGS_PATHS {
                        convert::apply_rule_path(settings, &rule, p, &defaults)?;
                    }
                } else {
                    convert::apply_rule_path(settings, &rule, path, &defaults)?;
                }
            }
            Ok(())
        })
        .await
        .map_err(within("rule"))?;
        tracing::info!(rule_id = updated.id, "rule updated");
        Ok(Response::new(pb::UpdateRuleResponse { rule: Some(convert::rule_to_pb(&updated)) }))
    }

    #[tracing::instrument(skip_all, fields(rule_id = request.get_ref().id))]
    async fn delete_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        service::rules::delete(&self.state, request.get_ref().id).await?;
        tracing::info!("rule deleted");
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }
}
