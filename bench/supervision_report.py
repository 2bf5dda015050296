"""The supervision benchmark's report (not a test): its figures as the Markdown tables of
``docs/performance.md``, section "监管规则 / Supervision", and the writer of that section."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import bench_ingest as bi
import supervision_ingest as ing
import supervision_sweep as sw

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
SECTION = "## 监管规则 / Supervision"


# --------------------------------------------------------------------------- sweep


def sweep_report(args: argparse.Namespace, host: str, total: int, runs: list[sw.SweepRun]) -> str:
    from imsp.standard.ruleset import load_rules

    names = {r.id: r.name for r in load_rules()}
    best = max(runs, key=lambda r: r.stats.records / r.seconds)
    stats = best.stats
    predicate_total = sum(stats.seconds.values())
    same = len({r.digest for r in runs}) == 1
    lines = [
        f"### 全量重新评估 / Full sweep ({dt.date.today():%Y-%m-%d})",
        "",
        f"Command: `.venv/bin/python bench/bench_supervision.py sweep --count {args.count} "
        f"--copies {args.copies} --batch {args.batch} --jobs {args.jobs}`"
        + (
            " (on a database loaded by an earlier run of the same command, `--database`)"
            if args.database
            else ""
        )
        + f". Machine: {host}.",
        "",
        f"{total:,} generated records ({args.copies} institutions × one sample world of "
        f"{args.count} objects per dataset, every dataset; ~1 % of prescriptions, follow-up "
        "and telemedicine records mutated to break a rule), stored with `COPY`; then a full "
        "sweep of all 45 rules (`imsp.supervision.sweep.sweep`, PostgreSQL, batches of "
        f"{args.batch} records, a transaction each) with each number of processes in "
        f"`--jobs`, the findings emptied before each. *CPU*: CPU seconds of the sweep's own "
        "processes; *PostgreSQL CPU*: of every PostgreSQL process of the machine during the "
        "sweep (other sessions' queries included).",
        "",
        "| processes | wall s | records/s | records/s per process | sweep CPU s | records per "
        "sweep CPU s | PostgreSQL CPU s | load 1/5/15 min before | findings digest |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *(
            f"| {r.jobs} | {r.seconds:.1f} | {r.stats.records / r.seconds:,.0f} | "
            f"{r.stats.records / r.seconds / r.jobs:,.0f} | {r.cpu:.1f} | "
            f"{r.stats.records / r.cpu if r.cpu else 0:,.0f} | {r.pg_cpu:.1f} | {r.load} | "
            f"`{r.digest}` |"
            for r in runs
        ),
        "",
        f"**Best: {best.stats.records / best.seconds:,.0f} records/s** with {best.jobs} "
        f"process(es) (target ≥ 20,000); {stats.records:,} records, {stats.raised:,} findings "
        f"raised. Findings and pending checks identical across runs: {'yes' if same else 'NO'}.",
        "",
        f"Per rule, in the best run (evaluations of its predicate; {predicate_total:.1f} CPU s "
        "in predicates in all; a rule is evaluated on the records of the datasets it applies to):",
        "",
        "| rule | name | evaluations | predicate s | evaluations/s |",
        "|---|---|---:|---:|---:|",
    ]
    for rid in sorted(stats.checks):
        n, t = stats.checks[rid], stats.seconds.get(rid, 0.0)
        lines.append(f"| {rid} | {names[rid]} | {n:,} | {t:.2f} | {n / t if t else 0:,.0f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- ingest on/off


def _drained(leg: ing.Leg) -> str:
    if leg.left:
        return f"{leg.depth:,} → {leg.left:,} after {leg.drained:.0f} s (not empty)"
    return f"{leg.depth:,} → 0 in {leg.drained:.0f} s"


#: How each ``--data`` mode is described in the report.
DATA = {
    "world": (
        "真实数据流 / realistic stream",
        "copies of one sample world (`imsp.standard.sample.generate_all({count})`, every dataset "
        "but the institution's own record and agreements, uploaded once before each leg: "
        "{per_copy} records a copy, {doctors} doctors) whose "
        "events fall on one day, tomorrow (registrations and payments made up to two days ahead "
        "fall today or yesterday: T+1 holds for every record), compliant with every rule as "
        "generated, and ~1 % of its business records mutated to break a "
        "rule (as the sweep's data: ~1 finding per 100 records); each record a single-record upload to its own service (`/uploadPatientFile`, "
        "`/uploadRegister`, `/uploadOutpatient`, `/uploadPrescriptionInfo`, "
        "`/uploadPrescriptionList`, `/uploadPayment`, …) in the world's upload order (base data "
        "first), {lanes} copies interleaved per wrk thread over the {connections} connections; "
        "every business key and reference renamed per copy (`bench/world_stream.py`), so every "
        "request is a new insert whose references resolve in its copy — what a hospital's "
        "traffic looks like. This is the realistic measure of the target.",
    ),
    "prescriptions": (
        "最坏情况 / worst case",
        "generated prescriptions only (`POST /uploadPrescriptionInfo`), each arriving without "
        "its patient, doctor, department, visit and items and with a business date in the past: "
        "every receipt carries -95 warnings, every change leaves a pending check and raises R45 "
        "(T+1) — a worst case for supervision, kept to show its bound.",
    ),
}


def ingest_report(args: argparse.Namespace, host: str, out: ing.Outcome) -> str:
    from imsp.config import SupervisionSettings

    s = out.stream
    title, what = DATA[s.data]
    what = what.format(
        count=args.world_count, per_copy=s.per_copy, doctors=s.doctors,
        lanes=max(1, args.connections // 2), connections=args.connections,
    )  # fmt: skip

    def cpu(leg: ing.Leg, group: str) -> str:
        share = leg.worker_cpu if group == "worker" else leg.run.cpu.get(group, 0.0)
        return f"{share:.2f} ({leg.us(share):,.0f})"

    rows = [
        f"| {i + 1} | {m} | {leg.run.rps:,.1f} | {leg.run.p50:.1f} | {leg.run.p99:.1f} | "
        f"{leg.run.errors} | {leg.rejected} | {cpu(leg, 'server')} | {cpu(leg, 'worker')} | "
        f"{cpu(leg, 'postgres')} | {load} |" + (f" {_drained(leg)} |" if m == "on" else " – |")
        for i, (m, leg, load) in enumerate(out.legs)
    ]
    total = sum(n for _, n in out.findings)
    command = (
        f"flock /tmp/imsp-bench.lock .venv/bin/python bench/bench_supervision.py ingest "
        f"--data {s.data} --duration {args.duration} --rounds {args.rounds} "
        f"--workers {args.workers} --connections {args.connections}"
        + (f" --world-count {args.world_count}" if s.data == "world" else "")
        + (f" --stream {args.stream}" if args.stream else "")
        + (" --receipts" if args.receipts else "")
        + f" --drain-limit {args.drain_limit:g} --fill {args.fill}"
    )
    lines = [
        f"### 上传与监管同时运行（{s.data}）/ Ingest with supervision on and off, {title} "
        f"({dt.date.today():%Y-%m-%d})",
        "",
        f"Command: `{command}`. Machine: {host}.",
        "",
        "Processes: the exchange service "
        f"`{bi.command_text(ing.EXCHANGE, args.workers).replace('{port}', str(args.port))}` and, in the "
        f"on legs, the supervision worker `{ing.WORKER}` (nice {SupervisionSettings().nice}, "
        "`IMSP_SUPERVISION__NICE`) beside it on the same cores, both from the README's "
        "production section.",
        "",
        f"Data: {what}",
        "",
        f"Method: one fresh database, first filled by {args.fill} s of the same stream with "
        "supervision off (not measured: the legs run on tables that hold data and statistics, "
        "as a production database's do); "
        f"{args.connections} connections, {args.duration} s per leg "
        "after a 3 s warm-up, legs alternating off/on. *Off*: no reference lookup in the "
        "receipt, no worker (an off leg's changes stay in the change feed; before each on leg "
        "the worker alone empties it, not measured, so an on leg's worker evaluates that leg's "
        "uploads only — until 2026-11-30 it also worked off the earlier legs' backlog during the "
        "on leg). *On*: every receipt carries the -95 reference warnings "
        "(`supervision/references.py`, run alongside the write) and the worker evaluates the "
        "change feed while the uploads run. "
        + (
            "*Receipts*: the receipts' -95 lookups as in the on legs, but no worker — the "
            "exchange's own share of supervision, what an exchange node pays when the worker "
            "runs on cores of its own (its changes wait in the feed). "
            if args.receipts
            else ""
        )
        + "The cluster runs with autovacuum off, so the "
        "benchmark runs `VACUUM ANALYZE` before each leg and when the load stops, and while the server "
        "runs vacuums and analyses each table past autovacuum's thresholds once every "
        "`autovacuum_naptime` (60 s), as autovacuum would (`bench_ingest.autoanalyze`; until "
        "2026-11-30 it analysed every 2 s, which made the change feed and supervision's tables "
        "be analysed ~30 times as often as autovacuum would, in the on legs only). "
        "CPU columns: CPU seconds per second of wall time (1.00 = one core) and, in brackets, "
        "µs of CPU per uploaded record, of the server processes, the worker, and the PostgreSQL "
        "processes of the benchmark's database (+ the shared writer processes). *Rejected*: "
        "records the receipts refused (must be 0: every request is valid).",
        "",
        "| leg | supervision | records/s | p50 ms | p99 ms | errors | rejected | server CPU (µs/record) "
        "| worker CPU (µs/record) | PostgreSQL CPU (µs/record) | load 1/5/15 min before "
        "| feed depth at the end → drained |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *rows,
        "",
        f"**On / off: {out.ratio:.0%}** (sum of the on legs' records/s over the off legs'; "
        "target ≥ 85 %)."
        + (
            f" **Receipts only / off: {out.share('receipts'):.0%}** (the lookups without the "
            "worker)."
            if args.receipts
            else ""
        ),
        "",
        f"Supervision's verdict at the end ({out.stored:,} records stored): {total:,} findings "
        f"({total / out.stored * 1000 if out.stored else 0:.1f} per 1,000 records"
        + (": " + ", ".join(f"{r} {n:,}" for r, n in out.findings[:8]) if out.findings else "")
        + (", …" if len(out.findings) > 8 else "")
        + f"); {out.waiting:,} records waiting for a reference (`supervision_pending`).",
    ]
    if out.stream_leg is not None:
        leg, load = out.stream_leg
        r = leg.run
        lines += [
            "",
            f"**Stream**: one on leg of {args.stream} s at the same single-record rate "
            f"(load before: {load}): {r.rps:,.1f} records/s, {r.requests:,} requests, "
            f"{r.errors} errors, {leg.rejected} rejected, p99 {r.p99:.1f} ms; server CPU "
            f"{cpu(leg, 'server')}, worker CPU {cpu(leg, 'worker')}, PostgreSQL CPU "
            f"{cpu(leg, 'postgres')}. Change-feed depth when the stream stopped → after the "
            f"wait: {_drained(leg)} (target: empty within 60 s — "
            f"{'met' if not leg.left and leg.drained <= 60 else 'NOT met'}).",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- docs/performance.md


def write(part: str, marker: str) -> None:
    text = DOC.read_text("utf-8")
    if SECTION not in text:
        text = (
            text.rstrip()
            + f"\n\n{SECTION}\n\nMethod and figures of `bench/bench_supervision.py`.\n"
        )
    head, _, rest = text.partition(SECTION)
    nxt = rest.find("\n## ")
    body, tail = (rest, "") if nxt < 0 else (rest[:nxt], rest[nxt:])
    blocks = body.split("\n### ")
    kept = [blocks[0]] + [b for b in blocks[1:] if not b.startswith(marker)]
    body = "\n### ".join(kept).rstrip() + "\n\n" + part + "\n"
    DOC.write_text(head + SECTION + body + tail, "utf-8")
