"""Summarises bench/soak.sh's RSS samples: prints RSS after 5 minutes, at the end, their ratio and the answers
given, and draws the samples as an SVG line plot (plain SVG text, no plotting library).
Usage: python3 bench/soak_report.py rss.csv out.svg "caption"
"""
import csv
import sys

rows = [(int(r["t_s"]), int(r["rss_kib"]) / 1024, int(r["answers"])) for r in csv.DictReader(open(sys.argv[1]))]
svg_path, caption = sys.argv[2], sys.argv[3]
if len(rows) < 2:
    sys.exit(f"{sys.argv[1]}: fewer than two samples")
t_end, rss_end, answers = rows[-1]
at5 = min(rows, key=lambda r: abs(r[0] - 300))
peak = max(r[1] for r in rows)
print(f"samples {len(rows)} over {t_end} s, answers {answers}")
print(f"RSS at {at5[0]} s: {at5[1]:.1f} MiB; at end ({t_end} s): {rss_end:.1f} MiB; "
      f"end/5min = {rss_end / at5[1]:.4f}; peak {peak:.1f} MiB")
# RSS swings within a turn (the answer's KV cache and buffers come and go: about 930-1070 MiB here), so single
# samples depend on the phase they land in. Compare five-minute blocks instead: the one right after the first five
# minutes against the last, by median and by maximum.
import statistics
blocks = []
for b in range(0, t_end + 1, 300):
    v = [m for t, m, _ in rows if b <= t < b + 300]
    if len(v) >= 3 and b + 300 <= t_end + 10:
        blocks.append((b, statistics.median(v), max(v)))
        print(f"  {b // 60:3d}-{b // 60 + 5:<3d} min: median {blocks[-1][1]:7.1f} MiB, max {blocks[-1][2]:7.1f} MiB")
after5 = next((x for x in blocks if x[0] == 300), None)
if after5 and blocks[-1][0] > 300:
    last = blocks[-1]
    print(f"last block / minutes 5-10: median {last[1] / after5[1]:.4f}, max {last[2] / after5[2]:.4f} "
          f"(goal: within 5%)")

W, H, L, B, T, R = 720, 300, 60, 40, 30, 20
tmax = max(t_end, 1)
ymax = peak * 1.1
x = lambda t: L + (W - L - R) * t / tmax
y = lambda m: H - B - (H - B - T) * m / ymax
pts = " ".join(f"{x(t):.1f},{y(m):.1f}" for t, m, _ in rows)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{L}" y="18" font-size="13">flint glasses --loop --speed max: resident memory (MiB) over time (min)'
       f' — {caption}</text>',
       f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
       f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>']
step = max(1, round(ymax / 5 / 50)) * 50
for m in range(0, int(ymax) + 1, step):
    out.append(f'<text x="{L - 6}" y="{y(m) + 4:.1f}" text-anchor="end">{m}</text>')
    out.append(f'<line x1="{L}" y1="{y(m):.1f}" x2="{W - R}" y2="{y(m):.1f}" stroke="#ddd"/>')
tick = 600 if tmax > 1200 else 60
for t in range(0, tmax + 1, tick):
    out.append(f'<text x="{x(t):.1f}" y="{H - B + 16}" text-anchor="middle">{t // 60}</text>')
out.append(f'<line x1="{x(300):.1f}" y1="{T}" x2="{x(300):.1f}" y2="{H - B}" stroke="#999" stroke-dasharray="4"/>')
out.append(f'<polyline points="{pts}" fill="none" stroke="#c33" stroke-width="1.5"/>')
out.append(f'<text x="{W - R}" y="{H - 6}" text-anchor="end">5 min: {at5[1]:.1f} MiB, end: {rss_end:.1f} MiB '
           f'(x{rss_end / at5[1]:.4f}), {answers} answers</text>')
out.append('</svg>')
tmp = svg_path + ".tmp"
with open(tmp, "w") as f:
    f.write("\n".join(out) + "\n")
import os
os.replace(tmp, svg_path)
print(f"plot: {svg_path}")
