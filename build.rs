//! Generates `include/tbsecrets.h` from `src/ffi` with cbindgen (docs/C-API.md).
//!
//! The header is committed. It is rewritten only when its text changes, so an unchanged C ABI
//! does not touch the file; `scripts/test-all.sh` fails when a build leaves it different from
//! the committed one.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=include/tbsecrets.h");

    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&root);
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let version = |part: &str| {
        std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version")
    };
    let macros = format!(
        "\n/** The version of this header: equal to tbs_version() of the library it came with. */\n\
         #define TBS_VERSION_MAJOR {}\n#define TBS_VERSION_MINOR {}\n#define TBS_VERSION_PATCH {}\n\n\
         /** The tenant that programs without tenants use (the CLI's default). */\n\
         #define TBS_DEFAULT_TENANT \"default\"\n",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH")
    );
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .with_after_include(macros)
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen could not generate the C header: {e}"));
    let mut generated = Vec::new();
    bindings.write(&mut generated);

    let header = root.join("include/tbsecrets.h");
    if std::fs::read(&header).ok().as_deref() != Some(generated.as_slice()) {
        std::fs::create_dir_all(root.join("include")).expect("create include/");
        std::fs::write(&header, &generated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", header.display()));
    }
}
