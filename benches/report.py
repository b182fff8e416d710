#!/usr/bin/env python3
"""Turn compare.sh's results.tsv + meta.json into Markdown tables (stdlib only).

    report.py RESULTS.tsv META.json OUT.md
    report.py stages CRITERION_DIR      # stage sums from benches/stages.rs, as JSON

Rows of tool "floor" are the disk's own time for a step's I/O (`cat` of what it reads while
`dd oflag=direct` writes what it stores); the report divides snapvault's time by it.

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
    ("nochange_key", "no-change snapshot, snapvault with `key remember` (peers: no-change)"),
    ("mutate", "snapshot after mutate"),
    ("restore", "full restore (verified with diff)"),
    ("month", "restore one month"),
    ("check", "check, all data read"),
    ("prune", "forget + prune, keep last 1"),
    ("reimport", "re-import under Pictures/YYYY/MM"),
    ("small_first", "{small} small files: first snapshot"),
    ("small_nochange", "{small} small files: no-change snapshot"),
]
# Issue 23.2: snapvault durable time ÷ the disk floor of the step, cold page cache.
FLOOR_TARGETS = {"first": 1.3, "restore": 1.3, "check": 1.2, "reimport": 1.2}
# Issue 23.2: warm, snapvault's throughput as a share of the two-core stage sum, and which
# sum (the write path: cut + id + seal + pack; the read path: open + verify).
STAGE_TARGETS = {"first": (0.80, "write"), "restore": (0.70, "read"), "check": (0.70, "read")}
# Issue 23.3: snapvault ÷ the best peer, both cache states.
PEER_TARGET = 0.5
PEER_TARGETS = {"nochange": 1.0, "nochange_key": 1.0}
# Steps only snapvault runs, compared with the peers' rows of another step: snapvault's
# no-change snapshot opened with a key remembered on the computer (no password, no
# Argon2id) against the peers' no-change snapshots (bupstash's key is a file too).
PEER_STEP = {"nochange_key": "nochange"}
# The benches/stages.rs figures that make up each path, one core each.
STAGE_PARTS = {
    "write": ["chunker/keyed_gear_32MiB", "hash/keyed_blake3_1MiB",
              "seal/encode_in_place_never_1MiB", "pack/writer_recycled_add_finish_16MiB"],
    "read": ["seal/decode_in_place_verify_1MiB"],
}
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


def stage_sums(criterion_dir):
    """Per path, the one-core throughput (MB/s) of doing every stage of it per byte, from
    criterion's saved medians (ns per iteration and bytes per iteration)."""
    parts = {}
    for name in sorted({n for ns in STAGE_PARTS.values() for n in ns}):
        d = os.path.join(criterion_dir, *name.split("/"), "new")
        ns = json.load(open(os.path.join(d, "estimates.json")))["median"]["point_estimate"]
        nbytes = json.load(open(os.path.join(d, "benchmark.json")))["throughput"]["Bytes"]
        parts[name] = {"ns": ns, "bytes": nbytes, "mb_s": nbytes / ns * 1e3}
    out = {"parts": parts}
    for path, names in STAGE_PARTS.items():
        ns_per_byte = sum(parts[n]["ns"] / parts[n]["bytes"] for n in names)
        out[f"{path}_mb_s_per_core"] = 1e3 / ns_per_byte
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "stages":
        json.dump(stage_sums(sys.argv[2]), sys.stdout, indent=1)
        print()
        return
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
        step = PEER_STEP.get(step, step)
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
                if sv and bp:
                    q = statistics.median(sv) / bp
                    tgt = PEER_TARGETS.get(step, PEER_TARGET) if step != "init" else None
                    line += f" | {q:.2f}" + (
                        "" if tgt is None else f" (≤ {tgt:.1f} " +
                        ("met)" if q <= tgt else "**missed**)"))
                else:
                    line += " | –"
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
        L.extend(floor_tables(mode, rows, tools, meta, sel, ok, returned, best_peer))
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
             "(columns: mode, run, tool, step, durable wall, user, sys, max RSS KiB, repository "
             "bytes, CPU cores used by other processes, status, returned wall, and for the "
             "rows of tool `floor`: bytes read, bytes written).")
    if meta.get("seconds"):
        L.append("")
        L.append(f"The whole run took {int(meta['seconds']) // 60} min {int(meta['seconds']) % 60} s "
                 f"({meta['start']} to {meta.get('end', '?')}).")
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
    # The verdicts, on the terminal too.
    show = False
    for line in L:
        if line.startswith("#### "):
            show = any(k in line for k in ("durable wall time", "floor", "stage sum"))
        if show and (line.startswith("#### ") or line.startswith("|")):
            print(line)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)


def floor_tables(mode, rows, tools, meta, sel, ok, returned, best_peer):
    """snapvault ÷ the disk floor per step; warm, its share of the two-core stage sum."""
    L = []
    fsteps = [(s, label) for s, label in STEPS if ok(sel(mode, "floor", s))]
    sv_ok = "snapvault" in tools
    if fsteps and sv_ok:
        L.append(f"#### {mode.capitalize()} page cache: snapvault against the disk floor")
        L.append("")
        L.append("Floor: the disk's own time for the step's I/O — `cat` of every file the step "
                 "reads while `dd oflag=direct` writes as many bytes as it stores (both at "
                 "once), then `sync -f`; same cache preparation as the tools. Medians.")
        L.append("")
        L.append("| step | reads MiB | writes MiB | floor s | snapvault durable s | "
                 "snapvault returned s | snapvault ÷ floor | target | best peer ÷ floor |")
        L.append("|---" * 9 + "|")
        for step, label in fsteps:
            fl = ok(sel(mode, "floor", step))
            f = statistics.median(float(r["wall"]) for r in fl)
            rb = statistics.median(int(r["read_bytes"] or 0) for r in fl) / 2**20
            wb = statistics.median(int(r["write_bytes"] or 0) for r in fl) / 2**20
            sv = ok(sel(mode, "snapvault", step))
            d = statistics.median(float(r["wall"]) for r in sv) if sv else None
            rt = statistics.median(returned(r) for r in sv) if sv else None
            tgt = FLOOR_TARGETS.get(step) if mode == "cold" else None
            q = d / f if d and f > 0 else None
            verdict = ""
            if tgt and q is not None:
                verdict = f"≤ {tgt:.1f} " + ("met" if q <= tgt else "**missed**")
            bp = best_peer(mode, step)
            L.append(f"| {label} | {rb:.0f} | {wb:.0f} | {med_range([float(r['wall']) for r in fl])} | "
                     + (f"{d:.2f} | {rt:.2f} | " if d is not None else "– | – | ")
                     + (f"{q:.2f}" if q is not None else "–") + f" | {verdict} | "
                     + (f"{bp / f:.2f}" if bp and f > 0 else "–") + " |")
        L.append("")
    st = meta.get("stages")
    corpus_bytes = meta.get("corpus_bytes") or 0
    if mode == "warm" and st and sv_ok and corpus_bytes:
        L.append("#### Warm page cache: snapvault against the two-core stage sum")
        L.append("")
        w, r = st["write_mb_s_per_core"], st["read_mb_s_per_core"]
        parts = "; ".join(f"`{n}` {p['mb_s']:.0f} MB/s" for n, p in st["parts"].items())
        L.append(f"One core each (`benches/stages.rs`, criterion medians, this machine, this run): "
                 f"{parts}. Write path (cut + id + seal + pack per byte): **{w:.0f} MB/s per "
                 f"core, {2 * w:.0f} MB/s on two**; read path (open + verify): **{r:.0f} MB/s "
                 f"per core, {2 * r:.0f} MB/s on two**. Share = library bytes ÷ snapvault's "
                 "median durable time ÷ the two-core sum (returned time in brackets: durable "
                 "time also waits for the disk to take the writes).")
        L.append("")
        L.append("| step | snapvault MB/s durable (returned) | two-core stage sum MB/s | share | target |")
        L.append("|---" * 5 + "|")
        for step, (tgt, path) in STAGE_TARGETS.items():
            sv = ok(sel(mode, "snapvault", step))
            if not sv:
                continue
            d = statistics.median(float(x["wall"]) for x in sv)
            rt = statistics.median(returned(x) for x in sv)
            ideal = 2 * (w if path == "write" else r)
            mbs, mbs_r = corpus_bytes / d / 1e6, corpus_bytes / rt / 1e6
            share = mbs / ideal
            label = dict(STEPS)[step]
            L.append(f"| {label} | {mbs:.0f} ({mbs_r:.0f}) | {ideal:.0f} ({path}) | "
                     f"{share * 100:.0f} % ({mbs_r / ideal * 100:.0f} %) | ≥ {tgt * 100:.0f} % "
                     + ("met" if share >= tgt else "**missed**") + " |")
        L.append("")
    return L


if __name__ == "__main__":
    main()
