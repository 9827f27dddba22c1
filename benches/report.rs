//! The benchmark report's criterion suites in one binary (`scripts/bench-report.sh`).
//!
//! Each bench file stays its own `cargo bench --bench NAME` target; this one includes the
//! suites the report runs as modules, so that the report's build links one fat-LTO bench
//! binary instead of seven (each link takes about 90 s on 2 cores, most of a cold report's
//! build). `TBS_BENCH_SUITES` names the suites to run, comma-separated (default: all), so
//! that a suite's setup — a store of 100,000 secrets, a PostgreSQL server, the
//! 1,000,000-secret store — runs only when the suite does; the criterion arguments (filter,
//! times, sample size) apply to each suite run.
//!
//! `TBS_BENCH_SUITES=core,ffi cargo bench --bench report -- --warm-up-time 1`

// Each suite file is its own bench target too and loads its helpers (tests/common) itself.
#![allow(clippy::duplicate_mod)]

#[allow(dead_code)] // each file's own `main` (its `criterion_main!`) is not called here
#[path = "core.rs"]
mod core_suite;
#[allow(dead_code)]
#[path = "dynamic_names.rs"]
mod dynamic_names_suite;
#[allow(dead_code)]
#[path = "ffi.rs"]
mod ffi_suite;
#[allow(dead_code)]
#[path = "placeholder.rs"]
mod placeholder_suite;
#[allow(dead_code)]
#[path = "postgres.rs"]
mod postgres_suite;
#[allow(dead_code)]
#[path = "resolve_sizes.rs"]
mod resolve_sizes_suite;
#[allow(dead_code)]
#[path = "scale.rs"]
mod scale_suite;

/// The suites by the name of their bench target, in the order they run.
const SUITES: [(&str, fn()); 7] = [
    ("core", core_suite::benches),
    ("ffi", ffi_suite::benches),
    ("dynamic_names", dynamic_names_suite::benches),
    ("placeholder", placeholder_suite::benches),
    ("resolve_sizes", resolve_sizes_suite::benches),
    ("postgres", postgres_suite::postgres_benches),
    ("scale", scale_suite::scale_benches),
];

fn main() {
    let chosen = std::env::var("TBS_BENCH_SUITES").unwrap_or_default();
    let chosen: Vec<&str> = chosen.split(',').filter(|s| !s.is_empty()).collect();
    if let Some(unknown) = chosen
        .iter()
        .find(|name| !SUITES.iter().any(|(suite, _)| suite == *name))
    {
        eprintln!(
            "TBS_BENCH_SUITES: no suite {unknown:?} (suites: {})",
            SUITES.map(|(name, _)| name).join(", ")
        );
        std::process::exit(2);
    }
    for (name, run) in SUITES {
        if chosen.is_empty() || chosen.contains(&name) {
            run();
        }
    }
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
