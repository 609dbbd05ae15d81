//! `autoscaler rules ...`: list, show, create, update and delete scaling rules
//! through `RulesService`.
use clap::{Args, Subcommand, ValueEnum};
use tonic::Code;

use super::format::{self, Table};
use super::{CliError, Ctx, Outcome};
use crate::pb::{self, rules_service_client::RulesServiceClient};

/// `rules` subcommands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List rules, ordered by id.
    List {
        /// Only rules of this ad account (`act_...`).
        #[arg(long)]
        account: Option<String>,
    },
    /// Show one rule with every field.
    Show {
        /// Rule id.
        id: i64,
    },
    /// Create a rule; fields not given take the server's defaults.
    Create(Box<CreateArgs>),
    /// Change a rule; only the fields given are changed.
    Update(Box<UpdateArgs>),
    /// Delete a rule (its actions stay in the audit trail).
    Delete {
        /// Rule id.
        id: i64,
    },
}

/// Flags of `rules create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Ad account the rule applies to (`act_...`).
    #[arg(long)]
    pub account: String,
    /// Campaign the rule applies to; the account-wide rule when omitted.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Rule name.
    #[arg(long)]
    pub name: String,
    /// Rule fields.
    #[command(flatten)]
    pub fields: RuleFields,
}

/// Flags of `rules update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Rule id.
    pub id: i64,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// Rule fields to change.
    #[command(flatten)]
    pub fields: RuleFields,
    /// Reset a field to its default (proto field name, e.g. `roas_pause`); repeatable.
    #[arg(long, value_name = "FIELD")]
    pub reset: Vec<String>,
}

/// Every settable rule field; money in minor units of `--currency`.
#[derive(Debug, Args)]
pub struct RuleFields {
    /// Whether the rule is applied.
    #[arg(long, value_name = "BOOL")]
    pub enabled: Option<bool>,
    /// ROAS above which (with the CTR threshold) the budget grows aggressively.
    #[arg(long)]
    pub roas_scale_up_aggressive: Option<f64>,
    /// CTR in percent above which (with the ROAS threshold) the budget grows aggressively.
    #[arg(long)]
    pub ctr_scale_up_aggressive_percent: Option<f64>,
    /// ROAS above which the budget grows.
    #[arg(long)]
    pub roas_scale_up: Option<f64>,
    /// ROAS below which the budget shrinks.
    #[arg(long)]
    pub roas_scale_down: Option<f64>,
    /// ROAS below which the campaign is paused.
    #[arg(long)]
    pub roas_pause: Option<f64>,
    /// Multiplier of an aggressive scale-up (> 1).
    #[arg(long)]
    pub multiplier_aggressive_up: Option<f64>,
    /// Multiplier of a scale-up (> 1).
    #[arg(long)]
    pub multiplier_up: Option<f64>,
    /// Multiplier of a scale-down (between 0 and 1).
    #[arg(long)]
    pub multiplier_down: Option<f64>,
    /// Impressions needed before any decision.
    #[arg(long)]
    pub min_impressions: Option<i64>,
    /// ISO 4217 currency of the amounts (must match the ad account's).
    #[arg(long)]
    pub currency: Option<String>,
    /// Lowest daily budget the engine sets, minor units.
    #[arg(long)]
    pub min_daily_budget_minor: Option<i64>,
    /// Highest daily budget the engine sets, minor units.
    #[arg(long)]
    pub max_daily_budget_minor: Option<i64>,
    /// Cap on the sum of the account's active daily budgets, minor units.
    #[arg(long)]
    pub max_daily_spend_limit_minor: Option<i64>,
    /// A new budget above this needs approval, minor units.
    #[arg(long)]
    pub require_approval_threshold_minor: Option<i64>,
    /// An increase larger than this needs approval, minor units.
    #[arg(long)]
    pub auto_approve_up_to_minor: Option<i64>,
    /// Least hours between two budget changes of one campaign.
    #[arg(long, value_name = "N")]
    pub cooldown_hours: Option<u32>,
    /// Performance window decisions use.
    #[arg(long, value_enum)]
    pub window: Option<WindowArg>,
    /// Whether learned hour-of-day schedules are applied.
    #[arg(long, value_name = "BOOL")]
    pub apply_hourly_schedule: Option<bool>,
    /// How budgets are decided: the threshold table or marginal ROAS.
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// Marginal ROAS: largest change of one budget move, percent (default 20).
    #[arg(long)]
    pub max_step_percent: Option<f64>,
    /// Marginal ROAS: smallest change worth making, percent (default 3).
    #[arg(long)]
    pub min_move_percent: Option<f64>,
    /// Marginal ROAS: half-life of the weight of past days, days (default 7).
    #[arg(long)]
    pub half_life_days: Option<f64>,
    /// Marginal ROAS: credible level of the interval behind the no-change band (default 0.8).
    #[arg(long)]
    pub credible_level: Option<f64>,
    /// Marginal ROAS: lowest plausible elasticity of revenue to budget (default 0.55).
    #[arg(long)]
    pub elasticity_low: Option<f64>,
    /// Marginal ROAS: highest plausible elasticity of revenue to budget (default 0.85).
    #[arg(long)]
    pub elasticity_high: Option<f64>,
    /// Marginal ROAS: one-sided credible level needed to pause (default 0.99).
    #[arg(long)]
    pub pause_evidence: Option<f64>,
}

/// `--strategy` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    /// The decision table on the window's ROAS and CTR.
    Thresholds,
    /// Pooled, lag-aware ROAS estimates; budgets toward equal marginal return.
    MarginalRoas,
}

impl From<StrategyArg> for pb::Strategy {
    fn from(s: StrategyArg) -> Self {
        match s {
            StrategyArg::Thresholds => Self::Thresholds,
            StrategyArg::MarginalRoas => Self::MarginalRoas,
        }
    }
}

/// `--window` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WindowArg {
    /// Yesterday and today so far.
    Last24Hours,
    /// Today so far.
    Today,
    /// Yesterday.
    Yesterday,
    /// The last 3 complete days.
    Last3Days,
    /// The last 7 complete days.
    Last7Days,
    /// The last 14 complete days.
    Last14Days,
}

impl From<WindowArg> for pb::MetricsWindow {
    fn from(w: WindowArg) -> Self {
        match w {
            WindowArg::Last24Hours => Self::Last24Hours,
            WindowArg::Today => Self::Today,
            WindowArg::Yesterday => Self::Yesterday,
            WindowArg::Last3Days => Self::Last3Days,
            WindowArg::Last7Days => Self::Last7Days,
            WindowArg::Last14Days => Self::Last14Days,
        }
    }
}

impl RuleFields {
    /// Copies the flags given into `rule` and names each in `mask`.
    fn apply(&self, rule: &mut pb::ScalingRule, mask: &mut Vec<String>) {
        macro_rules! set {
            ($($field:ident),* $(,)?) => {$(
                if let Some(v) = self.$field {
                    rule.$field = Some(v);
                    mask.push(stringify!($field).to_owned());
                }
            )*};
        }
        set!(
            enabled,
            roas_scale_up_aggressive,
            ctr_scale_up_aggressive_percent,
            roas_scale_up,
            roas_scale_down,
            roas_pause,
            multiplier_aggressive_up,
            multiplier_up,
            multiplier_down,
            min_impressions,
            min_daily_budget_minor,
            max_daily_budget_minor,
            max_daily_spend_limit_minor,
            require_approval_threshold_minor,
            auto_approve_up_to_minor,
            apply_hourly_schedule,
        );
        if let Some(currency) = &self.currency {
            rule.currency = currency.clone();
            mask.push("currency".into());
        }
        if let Some(hours) = self.cooldown_hours {
            rule.cooldown = Some(prost_types::Duration { seconds: i64::from(hours) * 3600, nanos: 0 });
            mask.push("cooldown".into());
        }
        if let Some(window) = self.window {
            rule.metrics_window = pb::MetricsWindow::from(window) as i32;
            mask.push("metrics_window".into());
        }
        self.apply_strategy(rule, mask);
    }

    /// Copies the strategy flags given into `rule` and names each in `mask`.
    pub(super) fn apply_strategy(&self, rule: &mut pb::ScalingRule, mask: &mut Vec<String>) {
        if let Some(strategy) = self.strategy {
            rule.strategy = pb::Strategy::from(strategy) as i32;
            mask.push("strategy".into());
        }
        for (flag, field, path) in [
            (self.max_step_percent, &mut rule.marginal_max_step_percent, "marginal_max_step_percent"),
            (self.min_move_percent, &mut rule.marginal_min_move_percent, "marginal_min_move_percent"),
            (self.half_life_days, &mut rule.marginal_half_life_days, "marginal_half_life_days"),
            (self.credible_level, &mut rule.marginal_credible_level, "marginal_credible_level"),
            (self.elasticity_low, &mut rule.marginal_elasticity_low, "marginal_elasticity_low"),
            (self.elasticity_high, &mut rule.marginal_elasticity_high, "marginal_elasticity_high"),
            (self.pause_evidence, &mut rule.marginal_pause_evidence, "marginal_pause_evidence"),
        ] {
            if let Some(v) = flag {
                *field = Some(v);
                mask.push(path.to_owned());
            }
        }
    }
}

/// Runs a `rules` subcommand.
pub(super) async fn run(ctx: &Ctx, command: RulesCommand) -> Result<Outcome, CliError> {
    let mut client = RulesServiceClient::new(ctx.channel.clone());
    match command {
        RulesCommand::List { account } => {
            let mut rules = Vec::new();
            let mut page_token = String::new();
            loop {
                let req = pb::ListRulesRequest {
                    account_id: account.clone().unwrap_or_default(),
                    page_size: 500,
                    page_token,
                };
                let resp = client.list_rules(req).await?.into_inner();
                rules.extend(resp.rules);
                if resp.next_page_token.is_empty() {
                    break;
                }
                page_token = resp.next_page_token;
            }
            let reply = pb::ListRulesResponse { rules, next_page_token: String::new() };
            ctx.print(&reply, || rule_table(&reply.rules))?;
        }
        RulesCommand::Show { id } => {
            let resp = client.get_rule(pb::GetRuleRequest { id }).await?.into_inner();
            ctx.print(&resp, || resp.rule.as_ref().map(rule_details).unwrap_or_default())?;
        }
        RulesCommand::Create(args) => {
            let mut rule = pb::ScalingRule {
                account_id: args.account,
                campaign_id: args.campaign.unwrap_or_default(),
                name: args.name,
                ..Default::default()
            };
            args.fields.apply(&mut rule, &mut Vec::new());
            let resp = client.create_rule(pb::CreateRuleRequest { rule: Some(rule) }).await?.into_inner();
            ctx.print(&resp, || resp.rule.as_ref().map(rule_details).unwrap_or_default())?;
        }
        RulesCommand::Update(args) => {
            let mut rule = pb::ScalingRule { id: args.id, ..Default::default() };
            let mut paths = Vec::new();
            if let Some(name) = args.name {
                rule.name = name;
                paths.push("name".to_owned());
            }
            args.fields.apply(&mut rule, &mut paths);
            paths.extend(args.reset);
            if paths.is_empty() {
                return Err(CliError::new(Code::InvalidArgument, "nothing to update: give at least one field flag"));
            }
            let req = pb::UpdateRuleRequest { rule: Some(rule), update_mask: Some(prost_types::FieldMask { paths }) };
            let resp = client.update_rule(req).await?.into_inner();
            ctx.print(&resp, || resp.rule.as_ref().map(rule_details).unwrap_or_default())?;
        }
        RulesCommand::Delete { id } => {
            client.delete_rule(pb::DeleteRuleRequest { id }).await?;
            ctx.print(&pb::DeleteRuleResponse {}, || format!("deleted rule {id}\n"))?;
        }
    }
    Ok(Outcome::Success)
}

fn money(value: Option<i64>, currency: &str) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format::money(v, currency))
}

fn cooldown(rule: &pb::ScalingRule) -> String {
    rule.cooldown.as_ref().map_or_else(|| "-".to_owned(), |d| format!("{}h", d.seconds as f64 / 3600.0))
}

fn window(rule: &pb::ScalingRule) -> String {
    pb::MetricsWindow::try_from(rule.metrics_window)
        .map_or_else(|_| rule.metrics_window.to_string(), |w| format::label(w.as_str_name(), "METRICS_WINDOW_"))
}

fn strategy(rule: &pb::ScalingRule) -> String {
    pb::Strategy::try_from(rule.strategy)
        .map_or_else(|_| rule.strategy.to_string(), |s| format::label(s.as_str_name(), "STRATEGY_"))
}

/// The rules as a table; the account is a column only when they belong to
/// several (else it heads the table), so the table fits 80 columns.
fn rule_table(rules: &[pb::ScalingRule]) -> String {
    let Some(first) = rules.first() else {
        return "no rules\n".to_owned();
    };
    let several_accounts = rules.iter().any(|r| r.account_id != first.account_id);
    let mut headers = vec!["ID"];
    if several_accounts {
        headers.push("ACCOUNT");
    }
    headers.extend(["CAMPAIGN", "NAME", "ON", "UP/DOWN/PAUSE", "DAILY BUDGET"]);
    let n = headers.len();
    let mut table = Table::new(&headers).right(&[0]).wrap(&[n - 4]);
    for r in rules {
        let mut cells = vec![r.id.to_string()];
        if several_accounts {
            cells.push(r.account_id.clone());
        }
        let enabled = match r.enabled {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        cells.extend([
            if r.campaign_id.is_empty() { "(account)".into() } else { r.campaign_id.clone() },
            r.name.clone(),
            enabled.to_owned(),
            format!(
                "{}/{}/{}",
                format::opt_ratio(r.roas_scale_up),
                format::opt_ratio(r.roas_scale_down),
                format::opt_ratio(r.roas_pause)
            ),
            format!(
                "{}-{}",
                money(r.min_daily_budget_minor, &r.currency),
                money(r.max_daily_budget_minor, &r.currency)
            ),
        ]);
        table.row(cells);
    }
    let mut out = String::new();
    if !several_accounts {
        out.push_str(&format!("account {}\n", first.account_id));
    }
    out.push_str(&table.render());
    out
}

fn rule_details(r: &pb::ScalingRule) -> String {
    let c = r.currency.as_str();
    format::key_values(&[
        ("id", r.id.to_string()),
        ("account", r.account_id.clone()),
        ("campaign", if r.campaign_id.is_empty() { "(account-wide)".into() } else { r.campaign_id.clone() }),
        ("name", r.name.clone()),
        ("enabled", format::opt(r.enabled)),
        ("roas scale-up aggressive", format::opt_ratio(r.roas_scale_up_aggressive)),
        ("ctr scale-up aggressive %", format::opt_ratio(r.ctr_scale_up_aggressive_percent)),
        ("roas scale-up", format::opt_ratio(r.roas_scale_up)),
        ("roas scale-down", format::opt_ratio(r.roas_scale_down)),
        ("roas pause", format::opt_ratio(r.roas_pause)),
        ("multiplier aggressive up", format::opt_ratio(r.multiplier_aggressive_up)),
        ("multiplier up", format::opt_ratio(r.multiplier_up)),
        ("multiplier down", format::opt_ratio(r.multiplier_down)),
        ("min impressions", format::opt(r.min_impressions)),
        ("currency", c.to_owned()),
        ("min daily budget", money(r.min_daily_budget_minor, c)),
        ("max daily budget", money(r.max_daily_budget_minor, c)),
        ("max daily spend limit", money(r.max_daily_spend_limit_minor, c)),
        ("approval above budget", money(r.require_approval_threshold_minor, c)),
        ("auto-approve increase up to", money(r.auto_approve_up_to_minor, c)),
        ("cooldown", cooldown(r)),
        ("metrics window", window(r)),
        ("apply hourly schedule", format::opt(r.apply_hourly_schedule)),
        ("strategy", strategy(r)),
        ("max step %", format::opt_ratio(r.marginal_max_step_percent)),
        ("min move %", format::opt_ratio(r.marginal_min_move_percent)),
        ("half-life days", format::opt_ratio(r.marginal_half_life_days)),
        ("credible level", format::opt_ratio(r.marginal_credible_level)),
        (
            "elasticity band",
            format!(
                "{}-{}",
                format::opt_ratio(r.marginal_elasticity_low),
                format::opt_ratio(r.marginal_elasticity_high)
            ),
        ),
        ("pause evidence", format::opt_ratio(r.marginal_pause_evidence)),
        ("created", format!("{} by {}", format::time(r.create_time.as_ref()), r.created_by)),
        ("updated", format!("{} by {}", format::time(r.update_time.as_ref()), r.updated_by)),
    ])
}
