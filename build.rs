//! Compiles the protobuf contract with protox (pure Rust: no `protoc` needed)
//! and writes the descriptor set that gRPC reflection serves.
use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/autoscaler/v1/common.proto",
    "proto/autoscaler/v1/rules.proto",
    "proto/autoscaler/v1/autoscaler.proto",
    "proto/autoscaler/v1/approvals.proto",
    "proto/autoscaler/v1/time_optimization.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("autoscaler_descriptor.bin"), compiler.encode_file_descriptor_set())?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
