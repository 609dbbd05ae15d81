//! `--json` output: each reply as protobuf JSON, exactly as grpcurl and the
//! other protobuf clients print it (lowerCamelCase field names, 64-bit
//! integers as strings, enums by name, RFC 3339 times, `"28800s"` durations,
//! fields at their default value left out). The reply is decoded against the
//! contract's descriptor set, the one gRPC reflection serves.
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use tonic::Code;

use super::CliError;

/// The contract's descriptors, decoded once.
fn pool() -> Result<&'static DescriptorPool, CliError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| CliError::new(Code::Internal, format!("the contract's descriptors do not decode: {e}")))
}

/// `message` as protobuf JSON: indented (two spaces, fields in proto order)
/// when `pretty`, else on one line.
pub(super) fn to_text<M: prost::Message + prost::Name>(message: &M, pretty: bool) -> Result<String, CliError> {
    let name = M::full_name();
    let descriptor = pool()?
        .get_message_by_name(&name)
        .ok_or_else(|| CliError::new(Code::Internal, format!("{name} is not in the contract's descriptors")))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| CliError::new(Code::Internal, format!("cannot re-read a {name}: {e}")))?;
    // The defaults are the canonical mapping grpcurl prints.
    let options = SerializeOptions::new();
    let mut out = Vec::new();
    let written = if pretty {
        let mut serializer = serde_json::Serializer::pretty(&mut out);
        dynamic.serialize_with_options(&mut serializer, &options)
    } else {
        let mut serializer = serde_json::Serializer::new(&mut out);
        dynamic.serialize_with_options(&mut serializer, &options)
    };
    written.map_err(|e| CliError::new(Code::Internal, format!("cannot print a {name} as JSON: {e}")))?;
    String::from_utf8(out).map_err(|e| CliError::new(Code::Internal, format!("JSON of a {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    #[test]
    fn replies_print_as_canonical_protobuf_json() {
        let rule = pb::ScalingRule {
            id: 3,
            account_id: "act_1".into(),
            metrics_window: pb::MetricsWindow::Today as i32,
            cooldown: Some(prost_types::Duration { seconds: 28_800, nanos: 0 }),
            create_time: Some(prost_types::Timestamp { seconds: 86_400, nanos: 500_000_000 }),
            roas_pause: Some(0.8),
            max_daily_budget_minor: Some(123_456),
            ..Default::default()
        };
        let text = to_text(&pb::GetRuleResponse { rule: Some(rule) }, false).expect("prints");
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let rule = &value["rule"];
        assert_eq!(rule["id"], "3", "int64 as a string: {text}");
        assert_eq!(rule["accountId"], "act_1", "{text}");
        assert_eq!(rule["metricsWindow"], "METRICS_WINDOW_TODAY");
        assert_eq!(rule["cooldown"], "28800s");
        assert_eq!(rule["createTime"], "1970-01-02T00:00:00.500Z");
        assert_eq!(rule["roasPause"], 0.8);
        assert_eq!(rule["maxDailyBudgetMinor"], "123456");
        assert!(rule.get("roasScaleUp").is_none(), "unset fields are left out: {text}");
        assert!(rule.get("name").is_none(), "default fields are left out: {text}");
        // Fields in proto order, as grpcurl prints them.
        assert!(text.find("\"id\"") < text.find("\"accountId\""), "{text}");
        let pretty = to_text(&pb::DeleteRuleResponse {}, true).expect("prints");
        assert_eq!(pretty, "{}");
    }
}
