#!/usr/bin/env python3
"""Turn compare.sh's results.tsv + meta.json into Markdown tables (stdlib only).

    report.py RESULTS.tsv META.json OUT.md

The tables replace the text between `<!-- compare.sh:begin -->` and `<!-- compare.sh:end -->`
in OUT.md (appended when the markers are missing; OUT.md is created when missing), so the
hand-written parts of docs/benchmarks.md survive a new run.
"""

import csv
import json
import os
import statistics
import sys

BEGIN = "<!-- compare.sh:begin -->"
END = "<!-- compare.sh:end -->"

STEPS = [
    ("init", "init"),
    ("first", "first snapshot"),
    ("nochange", "no-change snapshot"),
    ("mutate", "snapshot after mutate"),
    ("restore", "full restore (verified with diff)"),
    ("month", "restore one month"),
    ("check", "check, all data read"),
    ("prune", "forget + prune, keep last 1"),
    ("reimport", "re-import under Pictures/YYYY/MM"),
    ("small_first", "{small} small files: first snapshot"),
    ("small_nochange", "{small} small files: no-change snapshot"),
]
# snapvault wall / restic wall targets from issue 8.
TARGETS = {"first": 0.30, "mutate": 0.50, "restore": 0.40, "check": 0.35, "reimport": 0.50,
           "small_nochange": 0.50}
TOOLS = ["snapvault", "restic", "rustic", "bupstash", "borg"]
# Steps after which the repository size is worth showing (the others change nothing).
SIZE_STEPS = {"first", "nochange", "mutate", "prune", "reimport", "small_first", "small_nochange"}


def med_range(vals, fmt="{:.2f}"):
    if not vals:
        return "–"
    m = fmt.format(statistics.median(vals))
    if len(vals) == 1:
        return m
    return f"{m} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def main():
    results, meta_path, out = sys.argv[1:4]
    meta = json.load(open(meta_path))
    rows = list(csv.DictReader(open(results), delimiter="\t"))
    modes = [m for m in ("cold", "warm") if any(r["mode"] == m for r in rows)]
    tools = [t for t in TOOLS if any(r["tool"] == t for r in rows)]
    corpus_bytes = meta.get("corpus_bytes") or 0
    global STEPS
    STEPS = [(s, label.format(small=f"{meta.get('small', 0):,}")) for s, label in STEPS]

    def sel(mode, tool, step):
        return [r for r in rows if r["mode"] == mode and r["tool"] == tool and r["step"] == step]

    def ok(rs):
        return [r for r in rs if r["status"] == "ok"]

    def returned(r):
        # Rows of runs before the durable/returned split have only one time.
        return float(r.get("returned") or r["wall"])

    def best_peer(mode, step, key=lambda r: float(r["wall"])):
        meds = [statistics.median([key(r) for r in ok(sel(mode, t, step))])
                for t in tools if t != "snapvault" and ok(sel(mode, t, step))]
        return min(meds) if meds else None

    L = [BEGIN, ""]
    L.append(f"### Run of {meta['start']}: `{meta['command_line']}`")
    L.append("")
    L.append(f"- Machine: {meta['nproc']} × {meta['cpu']}, {meta['ram']} RAM, {meta['kernel']}, "
             f"{meta['os']}; work folder on {meta['fs']} (library, repositories, client caches "
             "and restore targets all on this one disk); cold sequential read of the "
             f"library (1 MiB reads, one file after another): {meta.get('disk_mbps', '?')} MB/s.")
    loads = [float(r["other_load"]) for r in rows]
    mean_other = sum(loads) / len(loads) if loads else 0.0
    L.append(f"- Load average before / after: {meta['load_before']} / {meta['load_after']}; "
             f"mean CPU used by *other* processes during the timed steps: **{mean_other:.2f} "
             f"of {meta['nproc']} cores** (kernel threads included, so the writeback of a "
             "step's own writes counts here too)" +
             (" — the machine was busy: wall times are inflated, CPU seconds much less so."
              if mean_other > 0.3 else " (quiet)."))
    L.append("- Tools: " + "; ".join(meta[t] for t in TOOLS if meta.get(t)) + ".")
    L.append("- **Durable time** is the headline: every timed step ends with `sync -f` of the "
             "work folder's filesystem, so a tool that returns with its writes still in the "
             "page cache pays for them too. *Returned* time (the tool's own exit) is in its "
             "own table.")
    L.append(f"- Corpus (`benches/corpus.py`, seed {meta['seed']}): {meta['corpus']}.")
    L.append(f"- Mutation: {meta['mutation'].removeprefix('mutate: ')}. "
             f"Month restored: {meta['month']}.")
    L.append(f"- {meta['runs']} run(s) per cache mode; each cell is the median with min–max. "
             "Tools are interleaved step by step, and their order rotates from run to run. "
             "*cold*: before every timed step `sync` and `posix_fadvise(DONTNEED)` on every "
             "file of the run (library, repositories, caches); *warm*: `sync`, then the step's "
             "inputs (source, repository, client cache) are read once just before it.")
    L.append("")
    L.append(meta["commands"])
    L.append("")
    for mode in modes:
        n_runs = len({r["run"] for r in rows if r["mode"] == mode})
        L.append(f"#### {mode.capitalize()} page cache: durable wall time, seconds ({n_runs} runs)")
        L.append("")
        hdr = "| step | " + " | ".join(tools)
        if "snapvault" in tools and "restic" in tools:
            hdr += " | snapvault ÷ restic | target"
        if "snapvault" in tools and len(tools) > 1:
            hdr += " | snapvault ÷ best peer"
        L.append(hdr + " |")
        L.append("|---" * (hdr.count("|")) + "|")
        for step, label in STEPS:
            if not any(sel(mode, t, step) for t in tools):
                continue
            cells = []
            for t in tools:
                rs = sel(mode, t, step)
                good = ok(rs)
                c = med_range([float(r["wall"]) for r in good])
                bad = [r["status"] for r in rs if r["status"] not in ("ok", "n/a")]
                if bad:
                    c += f" **{len(bad)}× {bad[0]}**"
                elif rs and all(r["status"] == "n/a" for r in rs):
                    c = "n/a"
                cells.append(c)
            line = f"| {label} | " + " | ".join(cells)
            if "snapvault" in tools and "restic" in tools:
                sv = [float(r["wall"]) for r in ok(sel(mode, "snapvault", step))]
                rs = [float(r["wall"]) for r in ok(sel(mode, "restic", step))]
                ratio = statistics.median(sv) / statistics.median(rs) if sv and rs else None
                tgt = TARGETS.get(step)
                verdict = ""
                if tgt and ratio is not None:
                    verdict = f"≤ {tgt:.2f} " + ("met" if ratio <= tgt else "**missed**")
                line += f" | {ratio:.2f}" if ratio is not None else " | –"
                line += f" | {verdict}"
            if "snapvault" in tools and len(tools) > 1:
                sv = [float(r["wall"]) for r in ok(sel(mode, "snapvault", step))]
                bp = best_peer(mode, step)
                line += f" | {statistics.median(sv) / bp:.2f}" if sv and bp else " | –"
            L.append(line + " |")
        L.append("")
        L.append(f"Returned time (the tool exited; its writes may still be in the page cache), "
                 f"seconds, medians:")
        L.append("")
        L.append("| step | " + " | ".join(tools) + " |")
        L.append("|---" * (1 + len(tools)) + "|")
        for step, label in STEPS:
            if not any(ok(sel(mode, t, step)) for t in tools):
                continue
            L.append(f"| {label} | " + " | ".join(
                med_range([returned(r) for r in ok(sel(mode, t, step))]) for t in tools) + " |")
        if corpus_bytes:
            tp = []
            for t in tools:
                w = [float(r["wall"]) for r in ok(sel(mode, t, "first"))]
                c = [float(r["user"]) + float(r["sys"]) for r in ok(sel(mode, t, "first"))]
                if w:
                    tp.append(f"{t} {corpus_bytes / statistics.median(w) / 1e6:.0f} MB/s "
                              f"({corpus_bytes / statistics.median(c) / 1e6:.0f} MB per CPU-s)")
            L.append("")
            L.append("First snapshot throughput (corpus bytes ÷ median wall): " + "; ".join(tp) + ".")
        L.append("")
        L.append(f"#### {mode.capitalize()} page cache: CPU seconds (user+sys) and peak RSS")
        L.append("")
        L.append("| step | " + " | ".join(f"{t} CPU s" for t in tools) + " | " +
                 " | ".join(f"{t} peak RSS MiB" for t in tools) + " |")
        L.append("|---" * (1 + 2 * len(tools)) + "|")
        peak = {t: (0.0, "") for t in tools}
        for step, label in STEPS:
            if not any(sel(mode, t, step) for t in tools):
                continue
            cpu = []
            rss = []
            for t in tools:
                good = ok(sel(mode, t, step))
                cpu.append(med_range([float(r["user"]) + float(r["sys"]) for r in good]))
                rv = [int(r["rss_kb"]) / 1024 for r in good]
                rss.append(f"{max(rv):.0f}" if rv else "–")
                if rv and max(rv) > peak[t][0]:
                    peak[t] = (max(rv), label)
            L.append(f"| {label} | " + " | ".join(cpu) + " | " + " | ".join(rss) + " |")
        L.append("")
        L.append("Peak RSS of any step: " + "; ".join(
            f"{t} {peak[t][0]:.0f} MiB ({peak[t][1]})" for t in tools if peak[t][1]) +
            (" — target snapvault ≤ restic: " +
             ("met" if peak["snapvault"][0] <= peak["restic"][0] else "**missed**")
             if "snapvault" in peak and "restic" in peak and peak["restic"][1] else "") + ".")
        L.append("")
        L.append(f"#### {mode.capitalize()} page cache: repository size after the step, MiB")
        L.append("")
        L.append("| step | " + " | ".join(tools) +
                 (" | snapvault vs restic | target" if "restic" in tools and "snapvault" in tools
                  else "") + " |")
        L.append("|---" * (1 + len(tools) + (2 if "restic" in tools and "snapvault" in tools
                                             else 0)) + "|")
        for step, label in STEPS:
            if step not in SIZE_STEPS or not any(sel(mode, t, step) for t in tools):
                continue
            vals = {}
            for t in tools:
                v = [int(r["repo_bytes"]) for r in ok(sel(mode, t, step))]
                vals[t] = statistics.median(v) if v else None
            line = f"| {label} | " + " | ".join(
                f"{vals[t] / 2**20:.1f}" if vals[t] is not None else "–" for t in tools)
            if "restic" in tools and "snapvault" in tools:
                if vals["restic"] and vals["snapvault"] is not None:
                    d = (vals["snapvault"] / vals["restic"] - 1) * 100
                    line += f" | {d:+.2f}% | ≤ +0.5% " + ("met" if d <= 0.5 else "**missed**")
                else:
                    line += " | – | "
            L.append(line + " |")
        L.append("")
    L.append("Raw rows (every run, every tool): `results.tsv` in the work folder "
             "(columns: mode, run, tool, step, wall, user, sys, max RSS KiB, repository bytes, "
             "CPU cores used by other processes, status).")
    L.append("")
    L.append(END)
    section = "\n".join(L) + "\n"

    if os.path.exists(out):
        text = open(out).read()
        if BEGIN in text and END in text:
            a = text.index(BEGIN)
            b = text.index(END) + len(END)
            text = text[:a] + section.rstrip("\n") + text[b:]
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        text = "# snapvault benchmarks\n\n" + section
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
