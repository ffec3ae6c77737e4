//! Generates the protobuf types from the vendored `.proto` files with a protoc
//! shipped by a crate, so a fresh machine needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let include = protoc_bin_vendored::include_path()?;
    println!("cargo:rerun-if-changed=proto");
    prost_build::Config::new()
        // Lines are `bytes::Bytes`: decoding a frame slices the read buffer instead
        // of copying each line.
        .bytes(["."])
        .compile_protos(
            &["proto/entry.proto", "proto/push.proto"],
            &[std::path::Path::new("proto"), include.as_path()],
        )?;
    Ok(())
}
