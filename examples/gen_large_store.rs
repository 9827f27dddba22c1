//! Generates a large store for scale tests: `cargo run --release --example gen_large_store --
//! DIR [SECRETS [TENANTS [SOURCES]]]` writes `DIR/large.db` and its key file `DIR/large.key`
//! (default: 1,000,000 secrets over 10,000 tenants, `tenant-0` holding 10,000 of them, and
//! 100,000 tracked sources in `tenant-1`). TEXT and TEXT_FILE values are mixed; every row is
//! written through the API (see `benches/scale/generate.rs`).

#[path = "../benches/scale/generate.rs"]
mod generate;

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: gen_large_store DIR [SECRETS [TENANTS [SOURCES]]]");
        std::process::exit(2);
    };
    let mut number = |default: usize| {
        args.next().map_or(default, |arg| {
            arg.parse().unwrap_or_else(|_| {
                eprintln!("not a number: {arg}");
                std::process::exit(2)
            })
        })
    };
    let secrets = number(1_000_000);
    let tenants = number(10_000).max(2);
    let sources = number(100_000);
    let shape = generate::Shape {
        secrets,
        tenants,
        big_tenant: (secrets / 100).max(1),
        sources,
    };
    let (path, _) = generate::cached_store(&dir, "large", shape);
    println!("{}", path.display());
}
