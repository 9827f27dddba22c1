#!/usr/bin/env python3
"""Writes docs/BENCHMARKS.md and its SVG plots from one run's machine-readable bench results.

Inputs (each optional: what is absent is listed in the report as skipped, never an error):
  --criterion DIR   criterion's output (CRITERION_HOME): **/new/{benchmark,estimates,sample}.json
  --jmh FILE        JMH results written with `-rf json`
  --c-output FILE   stdout of benches/c/bench_ffi.c
  --meta FILE       the run: machine, date, commit, load, duration, stage notes (bench-report.sh)

`scripts/bench-report.sh` runs the benches and calls this; tests/fixtures/bench-report/ holds a
tiny input that scripts/bench_report/test_generate.py checks it against.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

GOAL_NOTE = "issue 15"
# The hand-written history of the goals (before → after, why the misses are missed), embedded
# under the generated goal table.
FINDINGS = Path(__file__).with_name("findings.md")


@dataclass
class Figure:
    """One benchmark's result: time per operation in ns, its samples, its throughput unit."""

    key: str
    ns: float
    # (ns per operation, weight) pairs: criterion's per-sample means, JMH's timed calls, C runs.
    samples: list[tuple[float, float]] = field(default_factory=list)
    bytes_per_op: float | None = None
    p50: float | None = None
    p99: float | None = None
    rss: str | None = None


# ---------------------------------------------------------------------------------------------
# Readers


def read_criterion(root: Path | None) -> dict[str, Figure]:
    """Every criterion benchmark under `root`, keyed by its full id (`group/function[/value]`)."""
    out: dict[str, Figure] = {}
    if root is None or not root.is_dir():
        return out
    for bench_file in sorted(root.rglob("new/benchmark.json")):
        new = bench_file.parent
        try:
            bench = json.loads(bench_file.read_text())
            est = json.loads((new / "estimates.json").read_text())
        except (OSError, ValueError):
            continue
        samples: list[tuple[float, float]] = []
        try:
            sample = json.loads((new / "sample.json").read_text())
            samples = [(t / i, 1.0) for i, t in zip(sample["iters"], sample["times"]) if i > 0]
        except (OSError, ValueError, KeyError):
            pass
        throughput = bench.get("throughput") or {}
        out[bench["full_id"]] = Figure(
            key=bench["full_id"],
            ns=float(est["median"]["point_estimate"]),
            samples=samples,
            bytes_per_op=float(throughput["Bytes"]) if "Bytes" in throughput else None,
        )
    return out


_UNIT_NS = {"ns/op": 1.0, "us/op": 1e3, "ms/op": 1e6, "s/op": 1e9}


def read_jmh(path: Path | None) -> dict[str, Figure]:
    """JMH results keyed `jmh:Class.method:mode` (mode `avgt` or `sample`), times in ns."""
    out: dict[str, Figure] = {}
    if path is None or not path.is_file():
        return out
    try:
        results = json.loads(path.read_text())
    except ValueError:
        return out
    for r in results:
        metric = r["primaryMetric"]
        scale = _UNIT_NS.get(metric.get("scoreUnit", "ns/op"))
        if scale is None:
            continue
        name = ".".join(r["benchmark"].split(".")[-2:])
        fig = Figure(key=f"jmh:{name}:{r['mode']}", ns=float(metric["score"]) * scale)
        pct = metric.get("scorePercentiles") or {}
        if "50.0" in pct:
            fig.p50 = float(pct["50.0"]) * scale
        if "99.0" in pct:
            fig.p99 = float(pct["99.0"]) * scale
        for fork in metric.get("rawDataHistogram") or []:
            for iteration in fork:
                fig.samples += [(float(v) * scale, float(n)) for v, n in iteration]
        if not fig.samples:
            fig.samples = [(float(v) * scale, 1.0) for fork in metric.get("rawData") or [] for v in fork]
        if r["mode"] == "sample" and fig.p50 is not None:
            fig.ns = fig.p50
        out[fig.key] = fig
    return out


_C_GET = re.compile(r"tbs_store_get \(32 B, warm\): ([0-9.]+) ns/op")
_C_RESOLVE = re.compile(r"tbs_store_resolve_json \(([0-9]+) bytes\): ([0-9.]+) MB/s")


def read_c(path: Path | None) -> dict[str, Figure]:
    """benches/c/bench_ffi.c's two lines: `c:get` (ns/op) and `c:resolve_json` (time per call)."""
    out: dict[str, Figure] = {}
    if path is None or not path.is_file():
        return out
    text = path.read_text()
    if m := _C_GET.search(text):
        ns = float(m.group(1))
        out["c:get"] = Figure("c:get", ns, samples=[(ns, 1.0)])
    if m := _C_RESOLVE.search(text):
        size, mbs = float(m.group(1)), float(m.group(2))
        if mbs > 0:
            out["c:resolve_json"] = Figure("c:resolve_json", size / (mbs * 1e6) * 1e9, bytes_per_op=size)
    return out


_CLI = re.compile(r"^\s*(resolve_o|resolve_stdout|cp|cp_fsync)\s+([0-9.]+) ms\s+([0-9.]+) GB/s\s+[0-9.]+x cp\s+peak RSS (.*)$", re.M)
_ROTATION = re.compile(r"scale_rotation/10k_tenants: (\d+) keys rewrapped in ([0-9.]+)(ns|µs|us|ms|s) with \d+ "
                       r"readers; readers' p99 ([0-9.]+)(ns|µs|us|ms|s) during \((\d+) gets\) vs "
                       r"([0-9.]+)(ns|µs|us|ms|s) before")
_NS_PER = {"ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def read_extra(path: Path | None) -> dict[str, Figure]:
    """Lines of scripts/bench-cli-resolve.sh (`cli:resolve_o`, `cli:resolve_stdout`, `cli:cp`,
    `cli:cp_fsync`, peak RSS in `rss`) and of
    the scale bench's rotation report (`scale:rotation`, `scale:rotation_p99_during`,
    `scale:rotation_p99_before`, the gets during it in `samples`)."""
    out: dict[str, Figure] = {}
    if path is None or not path.is_file():
        return out
    text = path.read_text()
    for m in _CLI.finditer(text):
        key = f"cli:{m.group(1)}"
        out[key] = Figure(key, float(m.group(2)) * 1e6, rss=m.group(4).strip())
    if m := _ROTATION.search(text):
        out["scale:rotation"] = Figure("scale:rotation", float(m.group(2)) * _NS_PER[m.group(3)])
        out["scale:rotation_p99_during"] = Figure(
            "scale:rotation_p99_during", float(m.group(4)) * _NS_PER[m.group(5)],
            samples=[(0.0, float(m.group(6)))])
        out["scale:rotation_p99_before"] = Figure(
            "scale:rotation_p99_before", float(m.group(7)) * _NS_PER[m.group(8)])
    return out


# ---------------------------------------------------------------------------------------------
# Formatting


def fmt_time(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:,.3g} {unit}" if ns / scale < 1000 else f"{ns / scale:,.0f} {unit}"
    return f"{ns:,.0f} ns" if ns >= 100 else f"{ns:.3g} ns"


def gbps(fig: Figure) -> float | None:
    return fig.bytes_per_op / fig.ns if fig.bytes_per_op and fig.ns > 0 else None


def fmt_gbps(fig: Figure) -> str:
    rate = gbps(fig)
    return f"{rate:.2f} GB/s" if rate is not None else fmt_time(fig.ns)


def fmt_rate(ns: float) -> str:
    return f"{1e9 / ns:,.0f}/s"


# Rows: (label, figure id, baseline label, baseline id). Ids: criterion full ids, `jmh:...`, `c:...`.
GET_ROWS = [
    ("Rust `get` (audit on)", "get/tbsecrets", "bare `aes-gcm` open", "get/bare_aes_gcm_open"),
    ("Rust `get`, audit off", "get/audit_off", "bare `aes-gcm` open", "get/bare_aes_gcm_open"),
    ("Rust SERVICE session `get`", "get/audit_on_service_session", "bare `aes-gcm` open", "get/bare_aes_gcm_open"),
    ("Rust session `get`, 4 threads (per get)", "get_value_4_threads/audit_on_service_session",
     "same, audit off", "get_value_4_threads/audit_off"),
    ("C ABI `tbs_store_get` (criterion)", "ffi_get_32B/c_abi_tbs_store_get", "Rust `get` (same process)",
     "ffi_get_32B/rust_get_value"),
    ("C program `tbs_store_get` (bench_ffi.c, median of runs)", "c:get", "Rust `get` (core bench)", "get/tbsecrets"),
    ("JNI `getSecret`, average", "jmh:GetSecretBenchmark.tbsecrets:avgt", "ThingsBoard way, average",
     "jmh:GetSecretBenchmark.baselineThingsBoard:avgt"),
    ("JNI `getSecret`, average", "jmh:GetSecretBenchmark.tbsecrets:avgt", "reused `Cipher`, average",
     "jmh:GetSecretBenchmark.baselineReusedCipher:avgt"),
    ("JNI `getSecret`, median", "jmh:GetSecretBenchmark.tbsecrets:sample", "ThingsBoard way, median",
     "jmh:GetSecretBenchmark.baselineThingsBoard:sample"),
    ("JNI SERVICE session `getSecret`, average", "jmh:GetSecretBenchmark.tbsecretsServiceSession:avgt",
     "Rust SERVICE session `get`", "get/audit_on_service_session"),
    ("JNI `getSecret`, audit off, average", "jmh:GetSecretBenchmark.tbsecretsAuditOff:avgt",
     "JNI `getSecret`, average", "jmh:GetSecretBenchmark.tbsecrets:avgt"),
    ("JNI `PreparedSecret.get`, average", "jmh:GetSecretBenchmark.tbsecretsPrepared:avgt",
     "JNI `getSecret`, average", "jmh:GetSecretBenchmark.tbsecrets:avgt"),
    ("JNI SERVICE session `PreparedSecret.get`, average", "jmh:GetSecretBenchmark.tbsecretsServicePrepared:avgt",
     "JNI SERVICE session `getSecret`, average", "jmh:GetSecretBenchmark.tbsecretsServiceSession:avgt"),
]

RESOLVE_ROWS = [
    ("scan 10 MiB JSON, no placeholders", "scan_10MiB_json_no_placeholders/contains_placeholder",
     "`memmem` find", "scan_10MiB_json_no_placeholders/baseline_memmem_find"),
    ("resolve 10 MiB text, 1,000 placeholders (pure)", "resolve_text_10MiB_1000_placeholders/resolve_text",
     "naive `memmem` replace", "resolve_text_10MiB_1000_placeholders/baseline_naive_memmem_replace"),
    ("resolve 10 MiB text (store)", "resolve_text_10MiB_1000_placeholders/store_resolve_str",
     "copy only (`to_owned`)", "resolve_text_10MiB_1000_placeholders/reference_copy_only_to_owned"),
    ("resolve 1 MiB rule chain JSON (pure)", "resolve_json_1MiB_rule_chain/resolve_json",
     "`serde_json` parse + serialise", "resolve_json_1MiB_rule_chain/baseline_serde_value_roundtrip"),
    ("resolve 1 MiB rule chain JSON (store)", "resolve_json_1MiB_rule_chain/store_resolve_json",
     "`serde_json` validate only", "resolve_json_1MiB_rule_chain/validate_only_ignored_any"),
    ("C ABI `tbs_store_resolve_json` 1 MiB", "ffi_resolve_json_1MiB/c_abi_tbs_store_resolve_json",
     "Rust `resolve_json` (same process)", "ffi_resolve_json_1MiB/rust_resolve_json"),
    ("C program `tbs_store_resolve_json` ~1 MiB", "c:resolve_json", "Rust `resolve_json` 1 MiB (ffi bench)",
     "ffi_resolve_json_1MiB/rust_resolve_json"),
    ("REST node config, 3 per-message names", "resolve_1k_rule_node_config/per_message_3_names",
     "same, names written out", "resolve_1k_rule_node_config/static_3_names"),
    ("Java `resolveTextBytes` 10 MiB, direct buffer", "jmh:ResolveBenchmark.largeTextDirectBuffer:avgt",
     "one `arraycopy`", "jmh:ResolveBenchmark.largeBaselineArrayCopy:avgt"),
    ("Java `resolveBytes` (JSON) 10 MiB, `byte[]`", "jmh:ResolveBenchmark.largeJsonBytes:avgt",
     "one `arraycopy`", "jmh:ResolveBenchmark.largeBaselineArrayCopy:avgt"),
    ("Java `resolveTextBytes` 10 MiB into a reused direct buffer", "jmh:ResolveBenchmark.largeTextIntoDirectBuffer:avgt",
     "same, returning a new `byte[]`", "jmh:ResolveBenchmark.largeTextDirectBuffer:avgt"),
    ("Java `resolveTextBytes` 10 MiB into a reused direct buffer", "jmh:ResolveBenchmark.largeTextIntoDirectBuffer:avgt",
     "one `arraycopy`", "jmh:ResolveBenchmark.largeBaselineArrayCopy:avgt"),
    ("Java `resolveBytes` (JSON) 10 MiB into a reused direct buffer", "jmh:ResolveBenchmark.largeJsonIntoDirectBuffer:avgt",
     "same, returning a new buffer", "jmh:ResolveBenchmark.largeJsonDirectBuffer:avgt"),
    ("resolve 10 MiB text into a reused buffer (store, `resolve_into`)", "resolve_sizes/resolve_into_text/10485760",
     "`memmem` scan", "resolve_sizes/baseline_memmem_scan/10485760"),
    ("resolve 10 MiB text (store, `resolve_str`)", "resolve_sizes/resolve_str/10485760",
     "`memmem` scan", "resolve_sizes/baseline_memmem_scan/10485760"),
    ("Java resolve 1 MiB rule chain", "jmh:ResolveBenchmark.ruleChainTbsecrets:avgt",
     "Jackson + ThingsBoard decrypt", "jmh:ResolveBenchmark.ruleChainBaselineThingsBoard:avgt"),
    ("Java resolve REST node", "jmh:ResolveBenchmark.restNodeTbsecrets:avgt",
     "Jackson + ThingsBoard decrypt", "jmh:ResolveBenchmark.restNodeBaselineThingsBoard:avgt"),
]

WRITE_ROWS = [
    ("durable `create`", "create/durable", "4 KiB write + fdatasync", "create/baseline_write_4k_fdatasync"),
    ("durable `create`, audit off", "create/durable_audit_off", "4 KiB write + fdatasync",
     "create/baseline_write_4k_fdatasync"),
    ("durable `create` (the audit's share)", "create/durable", "same, audit off", "create/durable_audit_off"),
    ("warm `get`, PostgreSQL", "warm_get/postgres", "SQLite", "warm_get/sqlite"),
    ("uncached `get`, PostgreSQL", "uncached_get/postgres", "SQLite", "uncached_get/sqlite"),
    ("durable creates from 8 threads, PostgreSQL with fsync=on (per create)", "create_threads/postgres/8", "1 thread",
     "create_threads/postgres/1"),
    ("creates from 8 threads, SQLite, postgres bench (per create)", "create_threads/sqlite/8", "1 thread",
     "create_threads/sqlite/1"),
]

OTHER_ROWS = [
    ("open 100k secrets / 1k tenants", "open/100k_secrets_1k_tenants", None, None),
    ("master-key rotation, 10k tenants", "rotate_master_key/10k_tenants", "in-memory unwrap + wrap",
     "rotate_master_key/baseline_in_memory_unwrap_wrap_10k"),
    ("`audit verify` 200k records", "audit_verify/200k_records", "read lines + one HMAC each",
     "audit_verify/baseline_read_lines_and_hmac"),
]

THREADS = [1, 4, 8]
SIZES = None  # resolve_sizes: whatever sizes exist in the run


class Report:
    def __init__(self, figures: dict[str, Figure], meta: dict, findings: str = ""):
        self.f = figures
        self.meta = meta
        self.missing: list[str] = []
        self.findings = findings

    def need(self, key: str | None) -> Figure | None:
        if key is None:
            return None
        fig = self.f.get(key)
        if fig is None and key not in self.missing:
            self.missing.append(key)
        return fig

    def time_table(self, rows) -> list[str]:
        """Figure against baseline; values in GB/s where the bench declares bytes, else time."""
        lines = ["| figure | value | baseline | baseline value | ratio (time ÷ baseline time) |",
                 "|---|---|---|---|---|"]
        for label, key, base_label, base_key in rows:
            fig, base = self.need(key), self.need(base_key)
            if fig is None:
                continue
            show = fmt_gbps
            if base is None:
                lines.append(f"| {label} | {show(fig)} | {base_label or '—'} | — | — |")
                continue
            r = fig.ns / base.ns
            ratio = f"{r:.2f}×" + (f" ({1 / r:.1f}× faster)" if r < 1 else "")
            lines.append(f"| {label} | {show(fig)} | {base_label} | {show(base)} | {ratio} |")
        return lines

    def percentile_table(self) -> list[str]:
        rows = [("JNI `getSecret`", "tbsecrets"), ("JNI SERVICE session", "tbsecretsServiceSession"),
                ("JNI `TenantSecrets.getSecret`", "tbsecretsTenantFacade"),
                ("ThingsBoard way", "baselineThingsBoard"), ("reused `Cipher`", "baselineReusedCipher")]
        lines = ["| JMH SampleTime | median | p99 |", "|---|---|---|"]
        for label, method in rows:
            fig = self.need(f"jmh:GetSecretBenchmark.{method}:sample")
            if fig is not None and fig.p50 is not None and fig.p99 is not None:
                lines.append(f"| {label} | {fmt_time(fig.p50)} | {fmt_time(fig.p99)} |")
        return lines if len(lines) > 2 else []

    def sizes(self) -> list[int]:
        found = set()
        for key in self.f:
            m = re.fullmatch(r"resolve_sizes/[a-z_]+/([0-9]+)", key)
            if m:
                found.add(int(m.group(1)))
        return sorted(found)

    def size_table(self) -> list[str]:
        sizes = self.sizes()
        if not sizes:
            self.missing.append("resolve_sizes/*")
            return []
        lines = ["| input | `memmem` scan | `resolve_str` | share | `resolve_json` | share |",
                 "|---|---|---|---|---|---|"]
        for size in sizes:
            base = self.f.get(f"resolve_sizes/baseline_memmem_scan/{size}")
            cells = [fmt_size(size), fmt_gbps(base) if base else "—"]
            for fn in ("resolve_str", "resolve_json"):
                fig = self.f.get(f"resolve_sizes/{fn}/{size}")
                cells.append(fmt_gbps(fig) if fig else "—")
                cells.append(f"{base.ns / fig.ns:.0%}" if fig and base else "—")
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    def threads_table(self) -> list[str]:
        one = self.f.get("create/threads/1")
        lines = ["| threads | creates/s (SQLite, durable) | ÷ 1 thread |", "|---|---|---|"]
        for t in THREADS:
            fig = self.need(f"create/threads/{t}")
            if fig is None:
                continue
            ratio = f"{one.ns / fig.ns:.2f}×" if one else "—"
            lines.append(f"| {t} | {fmt_rate(fig.ns)} | {ratio} |")
        return lines if len(lines) > 2 else []

    def goals(self) -> list[str]:
        f = self.f
        lines = ["| goal | measured | target | status |", "|---|---|---|---|"]

        def row(goal, value, target, ok):
            status = "not measured" if value is None else ("met" if ok else "missed")
            lines.append(f"| {goal} | {value if value is not None else '—'} | {target} | {status} |")

        s, bare = f.get("get/audit_on_service_session"), f.get("get/bare_aes_gcm_open")
        r = s.ns / bare.ns if s and bare else None
        row("1. Rust SERVICE session `get` ÷ bare `aes-gcm` open",
            f"{r:.2f}× ({fmt_time(s.ns)} vs {fmt_time(bare.ns)})" if r else None, "≤ 2×", r is not None and r <= 2)
        j = f.get("jmh:GetSecretBenchmark.tbsecrets:avgt")
        row("2. JNI `getSecret` average", fmt_time(j.ns) if j else None, "≤ 300 ns", j is not None and j.ns <= 300)
        js = f.get("jmh:GetSecretBenchmark.tbsecretsServiceSession:avgt")
        r = js.ns / s.ns if js and s else None
        row("2. JNI session `getSecret` ÷ Rust session `get`", f"{r:.2f}×" if r else None, "≤ 1.3×",
            r is not None and r <= 1.3)
        jp = f.get("jmh:GetSecretBenchmark.tbsecrets:sample")
        row("2. JNI `getSecret` p99", fmt_time(jp.p99) if jp and jp.p99 else None, "≤ 1 µs",
            jp is not None and jp.p99 is not None and jp.p99 <= 1000)
        sizes = self.sizes()
        if sizes:
            big = sizes[-1]
            rj, mm = f.get(f"resolve_sizes/resolve_json/{big}"), f.get(f"resolve_sizes/baseline_memmem_scan/{big}")
            rt = f.get(f"resolve_sizes/resolve_str/{big}")
            row(f"3. JSON resolution of {fmt_size(big)}", fmt_gbps(rj) if rj else None, "≥ 2 GB/s",
                rj is not None and (gbps(rj) or 0) >= 2)
            share = mm.ns / rt.ns if rt and mm else None
            row(f"3. text resolution of {fmt_size(big)} ÷ `memmem` scan", f"{share:.0%}" if share else None,
                "≥ 50%", share is not None and share >= 0.5)
        else:
            row("3. JSON resolution of 10 MiB", None, "≥ 2 GB/s", False)
        c1, c8 = f.get("create/threads/1"), f.get("create/threads/8")
        r = c1.ns / c8.ns if c1 and c8 else None
        row("4. durable creates/s, 8 threads ÷ 1 thread (SQLite)", f"{r:.2f}×" if r else None, "≥ 3×",
            r is not None and r >= 3)
        p1, p8 = f.get("create_threads/postgres/1"), f.get("create_threads/postgres/8")
        r = p1.ns / p8.ns if p1 and p8 else None
        row("4. durable creates/s, 8 threads ÷ 1 thread (PostgreSQL)", f"{r:.2f}×" if r else None, "≥ 3×",
            r is not None and r >= 3)
        d, d0 = f.get("create/durable"), f.get("create/durable_audit_off")
        r = d.ns / d0.ns if d and d0 else None
        row("4. audit's share of a durable create", f"{r:.2f}×" if r else None, "≤ 1.2×", r is not None and r <= 1.2)
        # `> OUT` syncs nothing, like `cp`; `-o` syncs before its atomic rename, like `dd conv=fsync`.
        for label, cli_key, cp_key in (("CLI `resolve FILE > OUT` of 64 MiB ÷ `cp`", "cli:resolve_stdout", "cli:cp"),
                                       ("CLI `resolve FILE -o OUT` (synced, atomic) ÷ `dd conv=fsync`",
                                        "cli:resolve_o", "cli:cp_fsync")):
            cli, cp = f.get(cli_key), f.get(cp_key)
            r = cli.ns / cp.ns if cli and cp else None
            row(f"5. {label}",
                f"{r:.2f}× ({fmt_time(cli.ns)} vs {fmt_time(cp.ns)}; peak RSS {cli.rss})" if r else None, "≤ 2×",
                r is not None and r <= 2)
        during, before = f.get("scale:rotation_p99_during"), f.get("scale:rotation_p99_before")
        rot = f.get("scale:rotation")
        value = None
        if during and before and rot:
            gets = int(sum(w for _, w in during.samples))
            value = (f"readers' p99 {fmt_time(during.ns)} during ({gets:,} gets) vs {fmt_time(before.ns)} before; "
                     f"rotation {fmt_time(rot.ns)}")
        lines.append(f"| 6. master-key rotation of 1,000,000 secrets over 10,000 tenants, online | "
                     f"{value or '—'} | readers' p99 reported | {'reported' if value else 'not measured'} |")
        lines.append("| 6. open, memory, warm get, paging, where-used at 1,000,000 secrets | — | see issue 15 | "
                     "`cargo bench --bench scale` (minutes; not run by this report) |")
        return lines

    def render(self, plots: list[str]) -> str:
        m = self.meta
        out = ["# Benchmarks", "",
               "Generated by `scripts/bench-report.sh` (short settings; every ratio is to a baseline measured in",
               "the same run, absolute numbers drift with the machine's load). Criterion figures are medians of",
               "the samples; JMH figures are averages (`avgt`) or medians (`sample`); the C program prints the",
               "median of its runs. Do not edit by hand: run the script again.", ""]
        out += ["## Run", "", "| | |", "|---|---|"]
        for label, key in (("date (UTC)", "date"), ("commit", "commit"), ("CPU", "cpu"), ("cores", "cores"),
                           ("kernel", "kernel"), ("load average (1 min) at start / end", "load"),
                           ("run time", "duration"), ("settings", "settings")):
            if m.get(key) not in (None, ""):
                out.append(f"| {label} | {m[key]} |")
        if m.get("loaded"):
            out += ["", f"**The machine was loaded during this run** ({m['loaded']}): figures are noisy, ratios less so."]
        out += ["", f"## Goals of {GOAL_NOTE}", ""] + self.goals()
        if self.findings:
            out += ["", f"### {GOAL_NOTE}: before → after, and why the misses are missed", "",
                    self.findings.strip()]
        sections = [("## `get` of a 32-byte secret, every surface", self.time_table(GET_ROWS)),
                    ("### JNI latency percentiles", self.percentile_table()),
                    ("## Resolution", self.time_table(RESOLVE_ROWS)),
                    ("### Resolution throughput against input size (store, 50 secrets, one placeholder per ~8 KiB)",
                     self.size_table()),
                    ("## Writes", self.time_table(WRITE_ROWS)),
                    ("### Durable creates per second against threads", self.threads_table()),
                    ("## Other", self.time_table(OTHER_ROWS))]
        for title, table in sections:
            if len(table) > 2:
                out += ["", title, ""] + table
        if plots:
            out += ["", "## Plots", ""]
            for caption, name in plots:
                out += [f"![{caption}](benchmarks/{name})", "", f"*{caption}*", ""]
        notes = list(m.get("notes") or [])
        if self.missing:
            notes.append("not in this run (bench absent, stage skipped or failed): "
                         + ", ".join(f"`{k}`" for k in self.missing))
        if notes:
            out += ["", "## Skipped", ""] + [f"- {n}" for n in notes]
        return "\n".join(out).rstrip() + "\n"


def fmt_size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n:,} B"


# ---------------------------------------------------------------------------------------------
# Plots


def weighted_quantile(samples: list[tuple[float, float]], q: float) -> float:
    pts = sorted(samples)
    total = sum(w for _, w in pts)
    acc = 0.0
    for v, w in pts:
        acc += w
        if acc >= q * total:
            return v
    return pts[-1][0]


GET_SURFACES = [
    ("Rust get", "get/tbsecrets"),
    ("Rust session get", "get/audit_on_service_session"),
    ("C ABI get (criterion)", "ffi_get_32B/c_abi_tbs_store_get"),
    ("C program get (bench_ffi.c)", "c:get"),
    ("JNI getSecret", "jmh:GetSecretBenchmark.tbsecrets:sample"),
    ("JNI session getSecret", "jmh:GetSecretBenchmark.tbsecretsServiceSession:sample"),
    ("bare aes-gcm open (Rust)", "get/bare_aes_gcm_open"),
    ("ThingsBoard way (Java)", "jmh:GetSecretBenchmark.baselineThingsBoard:sample"),
]
BASELINE_SURFACES = {"bare aes-gcm open (Rust)", "ThingsBoard way (Java)"}


def _pyplot():
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "tbsecrets", "svg.fonttype": "none", "font.size": 9})
    return plt


def _save(fig, path: Path):
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})


def plot_get(figures: dict[str, Figure], path: Path) -> bool:
    stats = []
    for label, key in GET_SURFACES:
        fig = figures.get(key)
        if fig is None or not fig.samples:
            continue
        q = lambda p: weighted_quantile(fig.samples, p)  # noqa: E731
        stats.append({"label": label, "med": q(0.5), "q1": q(0.25), "q3": q(0.75),
                      "whislo": q(0.01), "whishi": q(0.99), "fliers": []})
    if not stats:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(stats) + 1.4))
    stats.reverse()
    boxes = ax.bxp(stats, orientation="horizontal", showfliers=False, patch_artist=True)
    for st, box in zip(stats, boxes["boxes"]):
        baseline = st["label"] in BASELINE_SURFACES
        box.set_facecolor("#d0d0d0" if baseline else "#9ecae1")
    ax.set_xscale("log")
    ax.set_xlabel("ns per get (log scale); box: quartiles, whiskers: p1–p99")
    ax.set_title("get of a 32-byte secret: latency distribution per surface")
    ax.grid(axis="x", which="both", alpha=0.3)
    _save(fig, path)
    plt.close(fig)
    return True


def plot_sizes(figures: dict[str, Figure], sizes: list[int], path: Path) -> bool:
    series = [("memmem scan (baseline)", "baseline_memmem_scan"), ("resolve_str (text)", "resolve_str"),
              ("resolve_json", "resolve_json")]
    lines = []
    for label, fn in series:
        pts = [(s, gbps(figures[f"resolve_sizes/{fn}/{s}"])) for s in sizes if f"resolve_sizes/{fn}/{s}" in figures]
        pts = [(s, r) for s, r in pts if r is not None]
        if pts:
            lines.append((label, pts))
    if not lines:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, pts in lines:
        ax.plot([s for s, _ in pts], [r for _, r in pts], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [fmt_size(s) for s in sizes])
    ax.set_yscale("log")
    ax.set_xlabel("input size")
    ax.set_ylabel("GB/s (log scale)")
    ax.set_title("resolve throughput against input size (store, same run)")
    ax.grid(which="both", alpha=0.3)
    ax.legend()
    _save(fig, path)
    plt.close(fig)
    return True


def plot_threads(figures: dict[str, Figure], path: Path) -> bool:
    pts = [(t, 1e9 / figures[f"create/threads/{t}"].ns) for t in THREADS if f"create/threads/{t}" in figures]
    if not pts:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([t for t, _ in pts], [r for _, r in pts], marker="o", label="SQLite durable creates")
    for label, backend in (("PostgreSQL (postgres bench)", "postgres"), ("SQLite (postgres bench)", "sqlite")):
        keyed = [(t, f"create_threads/{backend}/{t}") for t in THREADS]
        other = [(t, 1e9 / figures[key].ns) for t, key in keyed if key in figures]
        if other:
            ax.plot([t for t, _ in other], [r for _, r in other], marker="s", linestyle="--", label=label)
    fsync = figures.get("create/baseline_write_4k_fdatasync")
    if fsync:
        ax.axhline(1e9 / fsync.ns, color="grey", linestyle="--", label="4 KiB write + fdatasync per second")
    ax.set_xticks(THREADS)
    ax.set_xlabel("threads")
    ax.set_ylabel("creates per second")
    ax.set_ylim(bottom=0)
    ax.set_title("durable creates per second against threads")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------


def generate(criterion: Path | None, jmh: Path | None, c_output: Path | None, meta: dict,
             out_md: Path, svg_dir: Path, extra: Path | None = None, findings: Path | None = FINDINGS) -> Report:
    figures: dict[str, Figure] = {}
    for part in (read_criterion(criterion), read_jmh(jmh), read_c(c_output), read_extra(extra)):
        figures.update(part)
    report = Report(figures, meta, findings.read_text() if findings is not None and findings.is_file() else "")
    svg_dir.mkdir(parents=True, exist_ok=True)
    for old in svg_dir.glob("*.svg"):
        old.unlink()
    plots = []
    if plot_get(figures, svg_dir / "get_latency.svg"):
        plots.append(("get latency per surface (blue) next to its baselines (grey: a bare aes-gcm open, "
                      "ThingsBoard's way). Criterion surfaces: per-sample means of batched calls; JMH: "
                      "individually timed calls (SampleTime); C program: the median of its runs",
                      "get_latency.svg"))
    if plot_sizes(figures, report.sizes(), svg_dir / "resolve_throughput.svg"):
        plots.append(("resolve throughput against input size", "resolve_throughput.svg"))
    if plot_threads(figures, svg_dir / "creates_threads.svg"):
        plots.append(("durable creates per second against threads", "creates_threads.svg"))
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(report.render(plots))
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--criterion", type=Path)
    p.add_argument("--jmh", type=Path)
    p.add_argument("--c-output", type=Path)
    p.add_argument("--extra", type=Path, help="the CLI resolve and scale rotation outputs")
    p.add_argument("--meta", type=Path)
    p.add_argument("--out", type=Path, required=True, help="the Markdown report to write")
    p.add_argument("--svg-dir", type=Path, required=True, help="where the SVG plots go")
    a = p.parse_args()
    meta = json.loads(a.meta.read_text()) if a.meta and a.meta.is_file() else {}
    report = generate(a.criterion, a.jmh, a.c_output, meta, a.out, a.svg_dir, a.extra)
    print(f"wrote {a.out} ({len(report.f)} results, {len(report.missing)} absent)")


if __name__ == "__main__":
    main()
