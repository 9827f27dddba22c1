"""The report generator on the tiny input in tests/fixtures/bench-report/ (criterion, JMH and C
results with round numbers): the tables carry the expected figures and ratios, absent benches are
named as skipped, and every plot is a well-formed SVG showing its series.

Run by `scripts/bench-report.sh --test` (and so by scripts/test-all.sh)."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from generate import generate, read_c, read_criterion, read_extra, read_jmh

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "bench-report"
SVG = "{http://www.w3.org/2000/svg}svg"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    import json

    meta = json.loads((FIXTURES / "meta.json").read_text())
    generate(FIXTURES / "criterion", FIXTURES / "jmh.json", FIXTURES / "bench_ffi.txt", meta,
             out / "BENCHMARKS.md", out / "benchmarks", FIXTURES / "extra.txt")
    return out


def test_readers_take_medians_units_and_samples():
    crit = read_criterion(FIXTURES / "criterion")
    assert crit["get/tbsecrets"].ns == 400.0
    assert crit["resolve_sizes/resolve_json/65536"].bytes_per_op == 65536
    # sample.json: times / iters per sample.
    assert sorted(v for v, _ in crit["get/bare_aes_gcm_open"].samples) == pytest.approx([90, 100, 100, 110, 130])
    jmh = read_jmh(FIXTURES / "jmh.json")
    assert jmh["jmh:GetSecretBenchmark.baselineThingsBoard:avgt"].ns == 5000.0  # us/op -> ns
    sample = jmh["jmh:GetSecretBenchmark.tbsecrets:sample"]
    assert (sample.p50, sample.p99) == (450.0, 900.0)
    assert sum(w for _, w in sample.samples) == 100
    c = read_c(FIXTURES / "bench_ffi.txt")
    assert c["c:get"].ns == 420.0
    assert c["c:resolve_json"].bytes_per_op == 1048600


def test_tables_hold_figures_baselines_and_ratios(report):
    md = (report / "BENCHMARKS.md").read_text()
    assert "| Rust SERVICE session `get` | 200 ns | bare `aes-gcm` open | 100 ns | 2.00× |" in md
    assert "| JNI `getSecret`, average | 500 ns | ThingsBoard way, average | 5 µs | 0.10× (10.0× faster) |" in md
    assert "| C program `tbs_store_get` (bench_ffi.c, median of runs) | 420 ns | Rust `get` (core bench) | 400 ns | 1.05× |" in md
    assert "| JNI `getSecret` | 450 ns | 900 ns |" in md
    assert "| 64 KiB | 16.00 GB/s | 4.00 GB/s | 25% | 1.00 GB/s | 6% |" in md
    assert "| 4 | 2,500/s | 2.50× |" in md
    assert "| durable `create` (the audit's share) | 600 µs | same, audit off | 500 µs | 1.20× |" in md
    # Goals: met, missed, not measured.
    assert "| 1. Rust SERVICE session `get` ÷ bare `aes-gcm` open | 2.00× (200 ns vs 100 ns) | ≤ 2× | met |" in md
    assert "| 2. JNI `getSecret` average | 500 ns | ≤ 300 ns | missed |" in md
    assert "| 4. durable creates/s, 8 threads ÷ 1 thread (SQLite) | — | ≥ 3× | not measured |" in md
    # The run's machine and the load warning.
    for text in ("| CPU | Fixture CPU @ 2.0GHz |", "| cores | 2 |", "| kernel | Linux 6.1.0 |",
                 "| date (UTC) | 2026-01-02 03:04 |", "| commit | abc1234 |", "**The machine was loaded"):
        assert text in md


def test_absent_benches_are_named_not_fatal(report):
    md = (report / "BENCHMARKS.md").read_text()
    skipped = md.split("## Skipped", 1)[1]
    assert "- Java JMH benches failed (fixture note)" in skipped
    assert "`create/threads/8`" in skipped
    assert "`ffi_get_32B/c_abi_tbs_store_get`" in skipped
    assert "`get/tbsecrets`" not in skipped
    # No row for a figure that is absent.
    assert "C ABI `tbs_store_get` (criterion)" not in md.split("## Skipped", 1)[0]


def test_generator_runs_on_nothing(tmp_path):
    generate(None, None, None, {}, tmp_path / "B.md", tmp_path / "svg")
    md = (tmp_path / "B.md").read_text()
    assert md.startswith("# Benchmarks")
    assert "`get/tbsecrets`" in md.split("## Skipped", 1)[1]
    assert not list((tmp_path / "svg").glob("*.svg"))


@pytest.mark.parametrize("name, labels", [
    ("get_latency.svg", ["Rust get", "Rust session get", "C program get (bench_ffi.c)", "JNI getSecret",
                         "ThingsBoard way (Java)", "bare aes-gcm open (Rust)"]),
    ("resolve_throughput.svg", ["memmem scan (baseline)", "resolve_str (text)", "resolve_json", "64 KiB", "1 MiB"]),
    ("creates_threads.svg", ["SQLite durable creates", "threads", "creates per second"]),
])
def test_plots_are_valid_svg_with_their_series(report, name, labels):
    path = report / "benchmarks" / name
    root = ET.parse(path).getroot()
    assert root.tag == SVG
    texts = " ".join(t for t in root.itertext())
    for label in labels:
        assert label in texts, f"{label!r} not in {name}"
    assert f"](benchmarks/{name})" in (report / "BENCHMARKS.md").read_text()


def test_cli_and_scale_lines_become_goal_rows(report):
    extra = read_extra(FIXTURES / "extra.txt")
    assert extra["cli:resolve_o"].ns == pytest.approx(60e6)
    assert extra["cli:resolve_stdout"].ns == pytest.approx(70e6)
    assert extra["cli:cp"].ns == pytest.approx(40e6)
    assert extra["cli:cp_fsync"].ns == pytest.approx(100e6)
    assert extra["cli:resolve_o"].rss == "9000 KiB"
    assert extra["scale:rotation"].ns == pytest.approx(50e6)
    assert extra["scale:rotation_p99_during"].ns == pytest.approx(40e3)
    assert extra["scale:rotation_p99_before"].ns == pytest.approx(20e3)
    text = (report / "BENCHMARKS.md").read_text()
    assert ("| 5. CLI `resolve FILE > OUT` of 64 MiB ÷ `cp` | 1.75× (70 ms vs 40 ms; peak RSS 9100 KiB) | ≤ 2× "
            "| met |") in text
    assert ("| 5. CLI `resolve FILE -o OUT` (synced, atomic) ÷ `dd conv=fsync` | 0.60× (60 ms vs 100 ms; "
            "peak RSS 9000 KiB) | ≤ 2× | met |") in text
    assert "readers' p99 40 µs during (3,000 gets) vs 20 µs before; rotation 50 ms" in text


def test_the_hand_written_findings_follow_the_goal_table(report):
    text = (report / "BENCHMARKS.md").read_text()
    goals = text.index("## Goals of issue 15")
    findings = text.index("### issue 15: before → after, and why the misses are missed")
    assert goals < findings < text.index("## `get` of a 32-byte secret")
    assert "**Why the misses are missed.**" in text[findings:]
