#!/usr/bin/env python3
"""Writes BENCHMARKS.md's "## Decode and prefill vs llama.cpp" section from a bench/run.sh run directory.

Usage: bench/report.py RUN_DIR [--benchmarks BENCHMARKS.md] [--stdout]

RUN_DIR holds (written by run.sh): speed.jsonl (one record per engine x model x quant x threads x round,
with pp128/tg64 in tok/s), kl.jsonl (llama.cpp's mean KLD per quantized file; Flint's if its hook gave
one), rss.jsonl (peak RSS), meta.json (machine, commands, load average, versions).
The section is replaced in place if it exists (up to the next "## " heading), else appended; the file
is written atomically. Figures are medians over the interleaved rounds; ratio = Flint / llama.cpp, so
>= 1.00 means Flint is at least as fast.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HEADING = "## Decode and prefill vs llama.cpp"


def load_jsonl(p: Path) -> list[dict]:
    if not p.is_file():
        return []
    out = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"report.py: {p}:{i}: bad JSON: {e}")
    return out


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(x: float | None, nd: int = 1) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def ratio(f: float | None, l: float | None) -> str:
    return "—" if f is None or l is None or l == 0 else f"{f / l:.2f}"


def section(run_dir: Path) -> str:
    meta = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))
    speed = load_jsonl(run_dir / "speed.jsonl")
    kls = load_jsonl(run_dir / "kl.jsonl")
    rss = load_jsonl(run_dir / "rss.jsonl")

    keys = []
    for r in speed:
        k = (r["model_key"], r["quant"], r["threads"])
        if k not in keys:
            keys.append(k)

    def vals(k: tuple, engine: str, metric: str) -> list[float]:
        return [r[metric] for r in speed
                if (r["model_key"], r["quant"], r["threads"]) == k and r["engine"] == engine and r.get(metric) is not None]

    lines = [HEADING, ""]
    lines.append(f"Run {meta['date']} by `bench/run.sh` (written by `bench/report.py`; do not edit by hand).")
    lines.append("")
    lines.append(f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['mem']}; {meta['os']}.")
    lines.append(f"Load average before / after the run: {meta['load_before']} / {meta['load_after']} "
                 "(a load above ~0.5 means others were using the cores: treat the figures as noisy).")
    lines.append(f"Peer: llama.cpp from `{meta['llama_version']}` (vendored tree, build {meta.get('llama_build', '?')}), "
                 "built by `bench/build_llama.sh` (Release, GGML_NATIVE=ON, CPU only).")
    flint = meta.get("flint") or "not run (no flint binary or no .flint files: see the hook in bench/run.sh)"
    lines.append(f"Flint: {flint}.")
    lines.append(f"Rounds: {meta['rounds']} interleaved A/B rounds per row (Flint, llama.cpp, Flint, llama.cpp, ...); "
                 f"llama-bench repeats each test {meta['llama_reps']} times per round. Figures are medians, tok/s.")
    lines.append("")
    lines.append("| model | quant | threads | llama.cpp pp128 | Flint pp128 | ratio | llama.cpp tg64 | Flint tg64 | ratio |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in keys:
        lp, fp = med(vals(k, "llama.cpp", "pp128")), med(vals(k, "flint", "pp128"))
        lt, ft = med(vals(k, "llama.cpp", "tg64")), med(vals(k, "flint", "tg64"))
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {fmt(lp)} | {fmt(fp)} | {ratio(fp, lp)} | "
                     f"{fmt(lt)} | {fmt(ft)} | {ratio(ft, lt)} |")
    lines.append("")
    lines.append("All samples (tok/s, in run order):")
    lines.append("")
    for k in keys:
        for eng in ("flint", "llama.cpp"):
            pp, tg = vals(k, eng, "pp128"), vals(k, eng, "tg64")
            if pp or tg:
                lines.append(f"- {k[0]} {k[1]} t={k[2]} {eng}: pp128 {', '.join(fmt(x) for x in pp)}; "
                             f"tg64 {', '.join(fmt(x) for x in tg)}")
    if kls:
        lines.append("")
        lines.append(f"KL divergence vs the unquantized reference on `bench/calibration.txt` "
                     f"(llama-perplexity, context {kls[0].get('ctx', '?')}, scored on the second half of each chunk):")
        lines.append("")
        lines.append("| model | quant | engine | reference | mean KLD | same top token |")
        lines.append("|---|---|---|---|---:|---:|")
        for r in kls:
            top = r.get("same_top_p_pct")
            err = r.get("mean_kld_err")
            kld = f"{r['mean_kld']:.6f}" + (f" ± {err:.6f}" if err is not None else "")
            lines.append(f"| {r['model_key']} | {r['quant']} | {r['engine']} | {Path(r.get('base', '?')).name} | "
                         f"{kld} | {'—' if top is None else f'{top:.2f} %'} |")
    if rss:
        lines.append("")
        lines.append("Peak RSS (`/usr/bin/time -v`, whole process, 1 thread, same -p 128 -n 64 run):")
        lines.append("")
        for r in rss:
            lines.append(f"- {r['model_key']} {r['quant']} {r['engine']}: {r['peak_rss_kib'] / 1024:.0f} MiB "
                         f"(file {r.get('file_mib', 0):.0f} MiB)")
    lines.append("")
    lines.append("Commands:")
    lines.append("")
    lines.append("```")
    lines.extend(meta["commands"])
    lines.append("```")
    lines.append("")
    return "\n".join(lines)


def splice(doc: str, sec: str) -> str:
    """Replaces the section starting at HEADING up to the next level-2 heading, or appends it."""
    ls = doc.splitlines()
    try:
        start = next(i for i, l in enumerate(ls) if l.strip() == HEADING)
    except StopIteration:
        base = doc.rstrip("\n")
        return (base + "\n\n" if base else "# Benchmarks\n\n") + sec
    end = next((i for i in range(start + 1, len(ls)) if ls[i].startswith("## ")), len(ls))
    return "\n".join(ls[:start] + sec.rstrip("\n").splitlines() + ([""] if end < len(ls) else []) + ls[end:]) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--benchmarks", type=Path, default=Path(__file__).resolve().parent.parent / "BENCHMARKS.md")
    ap.add_argument("--stdout", action="store_true", help="print the section instead of writing the file")
    a = ap.parse_args()
    if not (a.run_dir / "meta.json").is_file():
        print(f"report.py: {a.run_dir / 'meta.json'}: no such file (not a run.sh run directory?)", file=sys.stderr)
        return 1
    sec = section(a.run_dir)
    if a.stdout:
        print(sec)
        return 0
    doc = a.benchmarks.read_text(encoding="utf-8") if a.benchmarks.is_file() else ""
    tmp = a.benchmarks.with_name(a.benchmarks.name + ".tmp")
    tmp.write_text(splice(doc, sec), encoding="utf-8")
    os.replace(tmp, a.benchmarks)
    print(f"wrote section '{HEADING}' in {a.benchmarks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
