//! Breaking-change check of the published gRPC contract, in Rust (no `buf`
//! needed): `proto/published-contract.txt` lists every message, field, enum
//! value, service and method of the last released contract, one per line.
//! Every line must still be found, unchanged, in the contract this build
//! compiles: a removed or renamed field, method or enum value, a changed
//! field number, type, cardinality or oneof, or a changed request, response
//! or streaming mode fails the test. Additions are free.
//!
//! On a deliberate release, refresh the listing and commit it:
//! `AUTOSCALER_BLESS_CONTRACT=1 cargo test --test contract`.
use std::collections::BTreeSet;
use std::path::PathBuf;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};

/// The package whose files make up the contract.
const PACKAGE: &str = "autoscaler.v1";

fn published_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto").join("published-contract.txt")
}

fn type_name(field: &FieldDescriptorProto) -> String {
    match field.r#type() {
        Type::Message | Type::Enum | Type::Group => field.type_name().trim_start_matches('.').to_owned(),
        scalar => scalar.as_str_name().trim_start_matches("TYPE_").to_lowercase(),
    }
}

fn list_enum(out: &mut Vec<String>, scope: &str, e: &EnumDescriptorProto) {
    let name = format!("{scope}.{}", e.name());
    out.push(format!("enum {name}"));
    for value in &e.value {
        out.push(format!("value {name}.{} = {}", value.name(), value.number()));
    }
}

fn list_message(out: &mut Vec<String>, scope: &str, m: &DescriptorProto) {
    let name = format!("{scope}.{}", m.name());
    out.push(format!("message {name}"));
    for field in &m.field {
        let label = if field.proto3_optional() {
            "optional "
        } else if field.label() == Label::Repeated {
            "repeated "
        } else {
            ""
        };
        // A proto3 `optional` sits in a synthetic oneof of its own; only a
        // real oneof is part of the wire contract.
        let oneof = match field.oneof_index {
            Some(i) if !field.proto3_optional() => {
                format!(" oneof {}", m.oneof_decl.get(i as usize).map_or("?", |o| o.name()))
            }
            _ => String::new(),
        };
        out.push(format!("field {name}.{} = {} {label}{}{oneof}", field.name(), field.number(), type_name(field)));
    }
    for nested in &m.nested_type {
        list_message(out, &name, nested);
    }
    for e in &m.enum_type {
        list_enum(out, &name, e);
    }
}

/// The contract of `set` as sorted lines.
fn listing(set: &FileDescriptorSet) -> Vec<String> {
    let mut out = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == PACKAGE) {
        for m in &file.message_type {
            list_message(&mut out, PACKAGE, m);
        }
        for e in &file.enum_type {
            list_enum(&mut out, PACKAGE, e);
        }
        for service in &file.service {
            let name = format!("{PACKAGE}.{}", service.name());
            out.push(format!("service {name}"));
            for method in &service.method {
                let stream = |on: bool| if on { "stream " } else { "" };
                out.push(format!(
                    "rpc {name}.{}({}{}) returns ({}{})",
                    method.name(),
                    stream(method.client_streaming()),
                    method.input_type().trim_start_matches('.'),
                    stream(method.server_streaming()),
                    method.output_type().trim_start_matches('.'),
                ));
            }
        }
    }
    out.sort();
    out
}

/// The published lines missing from `current`: each one is a breaking change.
fn breaking_changes(published: &str, current: &[String]) -> Vec<String> {
    let current: BTreeSet<&str> = current.iter().map(String::as_str).collect();
    published
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !current.contains(l))
        .map(str::to_owned)
        .collect()
}

fn current_listing() -> Vec<String> {
    let set = FileDescriptorSet::decode(autoscaler::pb::FILE_DESCRIPTOR_SET).expect("the compiled descriptor set");
    listing(&set)
}

const HEADER: &str = "# The published autoscaler.v1 contract: every line must stay true (tests/contract.rs).\n\
# Refresh on a deliberate release: AUTOSCALER_BLESS_CONTRACT=1 cargo test --test contract\n";

#[test]
fn the_contract_keeps_every_published_field_method_and_value() {
    let current = current_listing();
    if std::env::var_os("AUTOSCALER_BLESS_CONTRACT").is_some() {
        std::fs::write(published_path(), format!("{HEADER}{}\n", current.join("\n"))).expect("listing written");
        return;
    }
    let published = std::fs::read_to_string(published_path()).expect("proto/published-contract.txt");
    let broken = breaking_changes(&published, &current);
    assert!(
        broken.is_empty(),
        "breaking changes to the published contract (gone or changed):\n  {}\n\
         Restore them, or, on a deliberate release, refresh the listing with \
         AUTOSCALER_BLESS_CONTRACT=1 cargo test --test contract",
        broken.join("\n  ")
    );
}

#[test]
fn the_check_sees_renumbered_retyped_and_removed_fields_and_methods() {
    let current = current_listing();
    assert!(current.iter().any(|l| l.starts_with("rpc autoscaler.v1.RulesService.CreateRule(")), "{current:?}");
    let published = current.join("\n");
    assert!(breaking_changes(&published, &current).is_empty());

    let field = current.iter().find(|l| l.starts_with("field autoscaler.v1.")).expect("a field").clone();
    let rpc = current.iter().find(|l| l.starts_with("rpc ")).expect("a method").clone();
    let (head, number_and_type) = field.split_once(" = ").expect("field line");
    let (number, ty) = number_and_type.split_once(' ').expect("number and type");
    let renumbered = format!("{head} = {} {ty}", number.parse::<i32>().expect("a number") + 100);
    let retyped = format!("{head} = {number} bytes");
    for (what, edit) in [
        ("renumbered", vec![(field.clone(), renumbered)]),
        ("retyped", vec![(field.clone(), retyped)]),
        ("removed field", vec![(field.clone(), String::new())]),
        ("removed method", vec![(rpc.clone(), String::new())]),
    ] {
        let changed: Vec<String> = current
            .iter()
            .map(|l| edit.iter().find(|(from, _)| from == l).map_or_else(|| l.clone(), |(_, to)| to.clone()))
            .collect();
        let broken = breaking_changes(&published, &changed);
        assert_eq!(broken, std::slice::from_ref(&edit[0].0), "{what}");
    }
}
