//! Meta's Marketing (Graph) API client: accounts, campaigns with their budget
//! holders, campaign insights, batched reads and writes; with Meta's retry,
//! throttling and paging rules. The access token never leaves in a log,
//! an error or a Debug string.
mod batch;
pub mod decimal;
mod error;
mod hourly;
mod proof;
mod transport;
pub mod usage;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

pub use batch::MAX_BATCH_OPS;
pub use error::PlatformError;
pub use hourly::{BudgetSchedule, BudgetValueType, HOURLY_BREAKDOWN, HourlyPerformance, NewBudgetSchedule};

use self::batch::BatchOp;
use self::transport::Transport;
use crate::domain::ids::AccountId;
use crate::platform::types::{
    AccountInfo, BudgetWrite, CampaignPerformance, CampaignState, InsightsWindow, ObjectReads,
};

/// How to reach Meta, and how patient to be with it.
#[derive(Debug, Clone)]
pub struct MetaSettings {
    /// Graph API root, `https://graph.facebook.com` (the sandbox's in tests).
    pub graph_url: Url,
    /// Pinned API version, `v26.0`.
    pub api_version: String,
    /// System-user access token.
    pub access_token: SecretString,
    /// App secret; when set, every call carries `appsecret_proof`.
    pub app_secret: Option<SecretString>,
    /// The one action type counted as a purchase (`omni_purchase`).
    pub purchase_action_type: String,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Retries of a transient or throttled request.
    pub max_retries: u32,
    /// First back-off delay; doubles per retry.
    pub backoff_base: Duration,
    /// Longest throttle the client waits out; longer ones fail the account fast.
    pub max_throttle_wait: Duration,
    /// `limit` of each page of an edge.
    pub page_size: u32,
}

impl MetaSettings {
    /// Meta's production endpoint with the defaults for everything but the token.
    pub fn new(access_token: SecretString) -> Self {
        Self {
            graph_url: Url::parse("https://graph.facebook.com").unwrap_or_else(|_| unreachable!("literal URL")),
            api_version: "v26.0".to_owned(),
            access_token,
            app_secret: None,
            purchase_action_type: "omni_purchase".to_owned(),
            request_timeout: Duration::from_secs(60),
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            max_throttle_wait: Duration::from_secs(30),
            page_size: 500,
        }
    }
}

/// A Graph API client. Cheap to clone (one shared connection pool, throttle
/// state and request counter); calls for different accounts run concurrently
/// and a throttled account never delays the others.
#[derive(Clone)]
pub struct MetaClient {
    inner: Arc<Transport>,
}

impl fmt::Debug for MetaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.inner.settings;
        f.debug_struct("MetaClient")
            .field("graph_url", &s.graph_url.as_str())
            .field("api_version", &s.api_version)
            .finish_non_exhaustive()
    }
}

impl MetaClient {
    /// Builds the client; fails on a malformed API version or if the HTTP
    /// client cannot be built.
    pub fn new(settings: MetaSettings) -> Result<Self, PlatformError> {
        if !is_version(&settings.api_version) {
            return Err(PlatformError::Invalid(format!("API version {:?} is not vNN.N", settings.api_version)));
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // reqwest is built without a default TLS provider: use ring, as the
            // rest of the binary does. Losing a race to another installer is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("autoscaler/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.request_timeout)
            .build()
            .map_err(|e| PlatformError::Transport(e.without_url().to_string()))?;
        let proof = match &settings.app_secret {
            Some(secret) => Some(
                proof::appsecret_proof(secret.expose_secret(), settings.access_token.expose_secret())
                    .ok_or_else(|| PlatformError::Invalid("no HMAC-SHA256 available for appsecret_proof".into()))?,
            ),
            None => None,
        };
        Ok(Self { inner: Arc::new(Transport::new(http, settings, proof)) })
    }

    /// The settings the client was built with.
    pub fn settings(&self) -> &MetaSettings {
        &self.inner.settings
    }

    /// HTTP requests sent so far, retries included.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// HTTP requests sent so far for `account`, retries included.
    pub fn account_request_count(&self, account: &AccountId) -> u64 {
        self.inner.gates.requests(account.as_str())
    }

    /// The highest usage percentage Meta reported for each account in its
    /// last response that carried usage headers (`x-business-use-case-usage`
    /// call_count / total_cputime / total_time, `x-ad-account-usage`, the
    /// insights throttle): the figure the client slows down (75%) and pauses
    /// (90%) on.
    pub fn account_usage(&self) -> Vec<(String, f64)> {
        self.inner.gates.last_usage()
    }

    /// Time of each HTTP exchange with the Graph API (retries included,
    /// throttle waits and back-off excluded). Clones share the counts.
    pub fn request_seconds(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.inner.request_seconds.clone()
    }

    /// How long requests for `account` were held back so far (throttle
    /// pauses and the spacing of a slowed account), as the client decided.
    pub fn account_wait(&self, account: &AccountId) -> Duration {
        self.inner.gates.waited(account.as_str())
    }

    /// The ad account's name, currency, time zone and status.
    pub async fn account(&self, account: &AccountId) -> Result<AccountInfo, PlatformError> {
        let call = transport::Call::Get {
            url: self.inner.url(account.as_str())?,
            query: vec![("fields".into(), wire::ACCOUNT_FIELDS.into())],
        };
        let body = self.inner.execute(account.as_str(), &call).await?;
        wire::account(account, self.inner.decode(&body, "ad account")?)
    }

    /// Every campaign of the account with its status and budget holder. Ad sets
    /// are read only when some campaign may keep its budget on them.
    pub async fn campaigns(&self, account: &AccountId) -> Result<Vec<CampaignState>, PlatformError> {
        let edge = |name: &str| format!("{}/{name}", account.as_str());
        let campaigns: Vec<wire::ObjectRow> =
            self.inner.get_paged(account.as_str(), &edge("campaigns"), self.edge_query(wire::CAMPAIGN_FIELDS)).await?;
        let adsets = if wire::needs_ad_sets(&campaigns)? {
            self.inner.get_paged(account.as_str(), &edge("adsets"), self.edge_query(wire::ADSET_FIELDS)).await?
        } else {
            Vec::new()
        };
        wire::campaigns(campaigns, adsets)
    }

    /// Campaign-level performance over `window`, in one paged insights request
    /// for the whole account (one row per campaign, or per campaign and day
    /// for [`InsightsWindow::Daily`], which asks only for spend, impressions,
    /// purchases and their value: no name, clicks or CTR). Campaigns without
    /// delivery have no row.
    pub async fn insights(
        &self,
        account: &AccountId,
        window: &InsightsWindow,
    ) -> Result<Vec<CampaignPerformance>, PlatformError> {
        let fields = match window {
            InsightsWindow::Daily { .. } => wire::DAILY_INSIGHTS_FIELDS,
            _ => wire::INSIGHTS_FIELDS,
        };
        let mut query = self.edge_query(fields);
        query.push(("level".into(), "campaign".into()));
        let range = |since: &NaiveDate, until: &NaiveDate| {
            ("time_range".into(), json!({"since": since.to_string(), "until": until.to_string()}).to_string())
        };
        match window {
            InsightsWindow::Preset(preset) => query.push(("date_preset".into(), preset.clone())),
            InsightsWindow::Range { since, until } => query.push(range(since, until)),
            InsightsWindow::Daily { since, until } => {
                query.push(range(since, until));
                query.push(("time_increment".into(), "1".into()));
            }
        }
        let path = format!("{}/insights", account.as_str());
        // Each page is decoded borrowing from its body and parsed at once.
        // Rows carry account_currency; only a row without one waits for the
        // account's currency, which is asked once, after the last page.
        let purchase = &self.inner.settings.purchase_action_type;
        let mut rows: Vec<Result<CampaignPerformance, wire::InsightsRow<'static>>> = Vec::new();
        self.inner
            .for_each_page(account.as_str(), &path, query, |body| {
                let page: wire::Page<wire::InsightsRow<'_>> = self.inner.decode(body, &path)?;
                for row in page.data {
                    rows.push(match row.has_currency() {
                        true => Ok(wire::performance(row, purchase, 100)?),
                        false => Err(row.into_owned()),
                    });
                }
                Ok(page.paging.and_then(|p| p.next))
            })
            .await?;
        if rows.iter().all(Result::is_ok) {
            return Ok(rows.into_iter().flatten().collect());
        }
        let fallback_offset = self.account(account).await?.currency_offset;
        rows.into_iter()
            .map(|row| match row {
                Ok(parsed) => Ok(parsed),
                Err(waiting) => wire::performance(waiting, purchase, fallback_offset),
            })
            .collect()
    }

    /// Current status and daily budget of campaigns or ad sets, read through the
    /// batch API, object by object: one object's failed read is that object's
    /// error and never hides the others. Objects that do not exist are absent
    /// from the map. The outer error only when nothing could be read at all.
    pub async fn read_objects(&self, account: &AccountId, ids: &[String]) -> Result<ObjectReads, PlatformError> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        for id in &unique {
            check_object_id(id)?;
        }
        let version = &self.inner.settings.api_version;
        let ops: Vec<BatchOp> = unique
            .iter()
            .map(|id| BatchOp {
                method: "GET",
                relative_url: format!("{version}/{id}?fields={}", wire::OBJECT_FIELDS),
                body: None,
            })
            .collect();
        let mut states = HashMap::new();
        for (id, result) in unique.into_iter().zip(self.inner.run_batch(account.as_str(), &ops).await?) {
            let state = match result {
                Ok(body) => self.inner.decode(body.as_bytes(), "object").and_then(wire::object_state),
                Err(err) => Err(err),
            };
            match state {
                Ok(state) if state.id == *id => {
                    states.insert(id.clone(), Ok(state));
                }
                Ok(state) => {
                    let message = format!("asked for object {id}, Meta answered with {}", state.id);
                    states.insert(id.clone(), Err(PlatformError::Decode(message)));
                }
                Err(err) if err.is_not_found() => {}
                Err(err) => {
                    states.insert(id.clone(), Err(err));
                }
            }
        }
        Ok(states)
    }

    /// Sends `writes` through the batch API (at most 50 per request) and returns
    /// each write's outcome in order. The outer error only when nothing could be
    /// sent at all. Always read the objects back: Meta may accept a write that
    /// does not stick.
    pub async fn write(
        &self,
        account: &AccountId,
        writes: &[BudgetWrite],
    ) -> Result<Vec<Result<(), PlatformError>>, PlatformError> {
        let version = &self.inner.settings.api_version;
        let mut outcomes: Vec<Option<Result<(), PlatformError>>> = vec![None; writes.len()];
        let mut ops = Vec::new();
        let mut op_index = Vec::new();
        for (i, write) in writes.iter().enumerate() {
            if let Err(err) = check_object_id(write.object_id()) {
                outcomes[i] = Some(Err(err));
                continue;
            }
            let body = match write {
                BudgetWrite::SetDailyBudget { daily_budget_minor, .. } if *daily_budget_minor <= 0 => {
                    outcomes[i] = Some(Err(PlatformError::Invalid("daily budget must be positive".into())));
                    continue;
                }
                BudgetWrite::SetDailyBudget { daily_budget_minor, .. } => format!("daily_budget={daily_budget_minor}"),
                BudgetWrite::Pause { .. } => "status=PAUSED".to_owned(),
                BudgetWrite::Resume { .. } => "status=ACTIVE".to_owned(),
            };
            ops.push(BatchOp {
                method: "POST",
                relative_url: format!("{version}/{}", write.object_id()),
                body: Some(body),
            });
            op_index.push(i);
        }
        if !ops.is_empty() {
            let results = self.inner.run_batch(account.as_str(), &ops).await?;
            for (i, result) in op_index.into_iter().zip(results) {
                outcomes[i] = Some(result.map(drop));
            }
        }
        Ok(outcomes.into_iter().map(|o| o.unwrap_or(Ok(()))).collect())
    }

    fn edge_query(&self, fields: &str) -> Vec<(String, String)> {
        vec![("fields".into(), fields.into()), ("limit".into(), self.inner.settings.page_size.max(1).to_string())]
    }
}

/// Meta object ids are digits; anything else would change the request's path.
fn check_object_id(id: &str) -> Result<(), PlatformError> {
    if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PlatformError::Invalid(format!("object id {id:?} is not digits")))
    }
}

/// `v<digits>.<digits>`, as Meta's SDK requires.
fn is_version(v: &str) -> bool {
    let Some((major, minor)) = v.strip_prefix('v').and_then(|rest| rest.split_once('.')) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_metas_pattern() {
        assert!(is_version("v26.0"));
        for bad in ["26.0", "v26", "v26.", "v.0", "v26.0/../x"] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let mut settings = MetaSettings::new(SecretString::from("EAAB-very-secret"));
        settings.app_secret = Some(SecretString::from("app-secret"));
        let client = MetaClient::new(settings.clone()).expect("builds");
        let shown = format!("{settings:?} {client:?}");
        assert!(!shown.contains("EAAB-very-secret") && !shown.contains("app-secret"), "{shown}");
    }
}
