#!/usr/bin/env python3
"""The llama.cpp side of Flint's side-by-side benchmark (issue 3).

Subcommands (binaries come from bench/build_llama.sh, default <repo>/.cache/llama.cpp/bin):

  bench MODEL.gguf [-t 1 2] [-p 128] [-n 64] [-r 5] [--rss]
      Runs `llama-bench -m MODEL -t T -p P -n N -r R -o json` once per thread count and prints, per
      thread count, `threads: T`, `pp<P>: <tok/s>` and `tg<N>: <tok/s>` lines (the same line format the
      Flint hook in run.sh accepts), then one JSON object per thread count on lines starting `json: `.
      --rss wraps the run in /usr/bin/time -v and adds the peak RSS (KiB) of llama-bench.

  kl BASE.gguf Q.gguf [Q2.gguf ...] [-f bench/calibration.txt] [-c 256]
      `llama-perplexity --kl-divergence-base` on BASE (logits saved once, cached by content), then
      `--kl-divergence` for each quantized file; prints `kl <file>: mean <KLD> ± <err> same_top_p <pct>`
      and a `json: ` line per file.

Errors (missing binary or file, a tool failing, output that cannot be parsed) exit non-zero with a
message naming the file or command.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("LLAMA_BIN", ROOT / ".cache" / "llama.cpp" / "bin"))


class PeerError(Exception):
    pass


def tool(name: str) -> Path:
    p = BIN / name
    if not os.access(p, os.X_OK):
        raise PeerError(f"{p} not found or not executable: run bench/build_llama.sh (or set LLAMA_BIN)")
    return p


def need_file(p: Path) -> Path:
    if not p.is_file():
        raise PeerError(f"{p}: no such file")
    return p


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).splitlines()[-15:])
        raise PeerError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{tail}")
    return r


def peak_rss_kib(time_v_stderr: str) -> int | None:
    m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", time_v_stderr)
    return int(m.group(1)) if m else None


def bench(model: Path, threads: list[int], p: int, n: int, reps: int, rss: bool) -> list[dict]:
    exe = tool("llama-bench")
    need_file(model)
    out = []
    for t in threads:
        cmd = [str(exe), "-m", str(model), "-t", str(t), "-p", str(p), "-n", str(n), "-r", str(reps), "-o", "json"]
        if rss:
            if not os.access("/usr/bin/time", os.X_OK):
                raise PeerError("/usr/bin/time not found (Debian package `time`): needed for --rss")
            cmd = ["/usr/bin/time", "-v"] + cmd
        r = run(cmd)
        try:
            rows = json.loads(r.stdout)
        except json.JSONDecodeError as e:
            raise PeerError(f"llama-bench output for {model} is not JSON: {e}") from e
        rec = {"engine": "llama.cpp", "model": str(model), "threads": t, "command": " ".join(cmd)}
        for row in rows:
            if row.get("n_prompt", 0) > 0 and row.get("n_gen", 0) == 0:
                rec[f"pp{row['n_prompt']}"] = row["avg_ts"]
                rec[f"pp{row['n_prompt']}_samples"] = row.get("samples_ts")
            elif row.get("n_gen", 0) > 0 and row.get("n_prompt", 0) == 0:
                rec[f"tg{row['n_gen']}"] = row["avg_ts"]
                rec[f"tg{row['n_gen']}_samples"] = row.get("samples_ts")
            rec.setdefault("build_commit", row.get("build_commit"))
            rec.setdefault("model_type", row.get("model_type"))
            rec.setdefault("model_size", row.get("model_size"))
            rec.setdefault("cpu_info", row.get("cpu_info"))
        if f"pp{p}" not in rec or f"tg{n}" not in rec:
            raise PeerError(f"llama-bench output for {model} lacks pp{p}/tg{n} rows: {r.stdout[:500]}")
        if rss:
            rec["peak_rss_kib"] = peak_rss_kib(r.stderr)
        out.append(rec)
    return out


def kl_base_file(base: Path, text: Path, ctx: int) -> Path:
    """Where the base logits are cached: keyed by base file identity, text content and context."""
    h = hashlib.sha256()
    st = base.stat()
    h.update(f"{base.resolve()}|{st.st_size}|{st.st_mtime_ns}|{ctx}|".encode())
    h.update(text.read_bytes())
    d = ROOT / ".cache" / "kl"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{base.stem}.{h.hexdigest()[:16]}.kld"


def parse_kl(stdout_err: str, what: str) -> dict:
    m = re.search(r"Mean\s+KLD:\s*([-\d.eE+]+)\s*±\s*([-\d.eE+]+)", stdout_err)
    if not m:
        raise PeerError(f"no 'Mean KLD' line in llama-perplexity output for {what}")
    rec = {"mean_kld": float(m.group(1)), "mean_kld_err": float(m.group(2))}
    m = re.search(r"Same top p:\s*([\d.]+)\s*±\s*([\d.]+)\s*%", stdout_err)
    if m:
        rec["same_top_p_pct"] = float(m.group(1))
    m = re.search(r"Median\s+KLD:\s*([-\d.eE+]+)", stdout_err)
    if m:
        rec["median_kld"] = float(m.group(1))
    return rec


def kl(base: Path, quants: list[Path], text: Path, ctx: int, threads: int) -> list[dict]:
    exe = tool("llama-perplexity")
    need_file(base)
    need_file(text)
    logits = kl_base_file(base, text, ctx)
    common = ["-f", str(text), "-c", str(ctx), "-b", str(ctx), "-t", str(threads)]
    if not logits.is_file():
        tmp = logits.with_name(logits.name + ".tmp")
        run([str(exe), "-m", str(base), "--kl-divergence-base", str(tmp)] + common)
        os.replace(tmp, logits)
    out = []
    for q in quants:
        need_file(q)
        cmd = [str(exe), "-m", str(q), "--kl-divergence-base", str(logits), "--kl-divergence"] + common
        r = run(cmd)
        rec = {"engine": "llama.cpp", "model": str(q), "base": str(base), "ctx": ctx, "command": " ".join(cmd)}
        rec.update(parse_kl(r.stdout + r.stderr, str(q)))
        out.append(rec)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="llama.cpp peer for Flint's benchmark")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("model", type=Path)
    b.add_argument("-t", "--threads", type=int, nargs="+", default=[1, 2])
    b.add_argument("-p", type=int, default=128)
    b.add_argument("-n", type=int, default=64)
    b.add_argument("-r", type=int, default=5)
    b.add_argument("--rss", action="store_true")
    k = sub.add_parser("kl")
    k.add_argument("base", type=Path)
    k.add_argument("quants", type=Path, nargs="+")
    k.add_argument("-f", "--text", type=Path, default=ROOT / "bench" / "calibration.txt")
    k.add_argument("-c", "--ctx", type=int, default=256)
    k.add_argument("-t", "--threads", type=int, default=2)
    a = ap.parse_args()
    try:
        if a.cmd == "bench":
            for rec in bench(a.model, a.threads, a.p, a.n, a.r, a.rss):
                print(f"threads: {rec['threads']}")
                print(f"pp{a.p}: {rec[f'pp{a.p}']:.2f}")
                print(f"tg{a.n}: {rec[f'tg{a.n}']:.2f}")
                if a.rss:
                    print(f"peak_rss_kib: {rec['peak_rss_kib']}")
                print("json: " + json.dumps(rec))
        else:
            for rec in kl(a.base, a.quants, a.text, a.ctx, a.threads):
                print(f"kl {rec['model']}: mean {rec['mean_kld']:.6f} ± {rec['mean_kld_err']:.6f}"
                      f" same_top_p {rec.get('same_top_p_pct', float('nan')):.2f}%")
                print("json: " + json.dumps(rec))
    except (PeerError, OSError) as e:
        print(f"peer.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
