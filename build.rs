//! Generates `include/tbsecrets.h` from `src/ffi` with cbindgen (docs/C-API.md).
//!
//! The header is committed. It is rewritten only when its text changes, so an unchanged C ABI
//! does not touch the file; `scripts/test-all.sh` fails when a build leaves it different from
//! the committed one. Builds without the `ffi` feature leave the header alone.
//!
//! It also gives the cdylib its SONAME, `libtbsecrets.so.0`.

use std::path::Path;

/// The major version of the C ABI, the number in the SONAME. Raised on every incompatible
/// change of `include/tbsecrets.h` (in step with `tbsecrets.pc.in` and `scripts/install.sh`).
const SONAME_MAJOR: u32 = 0;

fn main() {
    // The shared library's SONAME: programs record `libtbsecrets.so.0` and keep working across
    // compatible releases (scripts/install.sh installs the .so.0 link beside the file).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtbsecrets.so.{SONAME_MAJOR}");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_FFI").is_none() {
        // Without the C ABI there is no header to generate; the committed one stays as it is.
        return;
    }
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
