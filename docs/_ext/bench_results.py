"""Sphinx extension: write the results page's tables from ``benchmarks/results/*.json``.

At ``builder-inited`` it reads, for every benchmark, the newest JSON file that
``benchmarks/_common.py`` wrote (``<name>-<device>-<UTC time>.json``), picks the figures that
matter (see ``FIGURES``), and writes ``docs/_generated/results_tables.md``, which
``docs/results.md`` includes. Nothing is measured at build time.
"""

from __future__ import annotations

import glob
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
OUT = os.path.join(ROOT, "docs", "_generated", "results_tables.md")
_NAME = re.compile(r"^(?P<bench>.+?)-(?P<device>[a-z0-9_]+-[a-z0-9_]+)-(?P<stamp>\d{8}-\d{6})\.json$")


def newest_files(results_dir: str = RESULTS, per_benchmark: int = 3) -> dict[str, str]:
    """``{section title: path}``: for every benchmark, the newest JSON of each distinct command
    (by the UTC stamp in the file name), newest first, at most ``per_benchmark``: a partial
    re-run (fewer arms, a smoke size) must not hide the full run before it."""
    runs: dict[str, dict[str, tuple[str, str]]] = {}
    for path in glob.glob(os.path.join(results_dir, "*.json")):
        m = _NAME.match(os.path.basename(path))
        if not m or m["bench"] in ("cpu", "gpu", "tpu") or m["bench"] == "quality":
            continue  # combined files of scripts/bench.py; quality: see quality_files
        try:
            with open(path) as f:
                command = json.load(f).get("meta", {}).get("command", "")
        except (OSError, ValueError):
            continue
        by_cmd = runs.setdefault(m["bench"], {})
        if command not in by_cmd or m["stamp"] > by_cmd[command][0]:
            by_cmd[command] = (m["stamp"], path)
    out = {}
    for bench in sorted(runs):
        newest = sorted(runs[bench].values(), reverse=True)[:per_benchmark]
        for i, (_, path) in enumerate(newest):
            out[bench if i == 0 else f"{bench} ({os.path.basename(path)[:-5]})"] = path
    return out


# Sections in this order (then any other benchmark, alphabetically; quality runs last).
ORDER = ["throughput", "static_groups", "e2e_mnist1d", "overhead", "gp_speed", "tpe_speed",
         "evolution", "executors", "warm_start", "crash_campaign", "nan_campaign",
         "callback_overhead", "mnist1d_accuracy", "hypergrad", "schedulers", "space_scale"]


def quality_files(results_dir: str = RESULTS, limit: int = 14) -> dict[str, str]:
    """Newest ``quality`` file per (functions, batch, evaluations), newest first, at most
    ``limit``: quality runs differ by what they compare, so one newest file is not enough."""
    seen: dict[tuple, tuple[str, str]] = {}
    for path in glob.glob(os.path.join(results_dir, "quality-*.json")):
        m = _NAME.match(os.path.basename(path))
        if not m or m["bench"] != "quality":
            continue
        with open(path) as f:
            d = json.load(f)
        key = (tuple(sorted(d.get("results", {}))), d.get("batch"), d.get("evals"),
               tuple(sorted({s for r in d.get("results", {}).values() for s in r})))
        if key not in seen or m["stamp"] > seen[key][0]:
            seen[key] = (m["stamp"], path)
    def rank(kv):  # comparisons against a peer library first, then newest first
        peer = any(s.startswith(("optuna", "botorch")) for s in kv[0][3])
        return (not peer, -int(kv[1][0].replace("-", "")))
    newest = sorted(seen.items(), key=rank)[:limit]
    return {f"quality: {', '.join(k[0])}; batch {k[1]}; {', '.join(k[3])}": v[1]
            for k, v in newest}


def headline_section(readme: str = os.path.join(ROOT, "README.md")) -> str:
    """The README's results table (at most 10 same-run ratios against named peers), each row
    followed by the command that wrote its file(s), taken from the JSON."""
    with open(readme) as f:
        text = f.read()
    try:
        table = text[text.index("## Results"):text.index("## Examples")]
    except ValueError:
        return ""
    rows = [ln for ln in table.splitlines() if ln.startswith("| ")]
    out = ["## Headline figures", "",
           "The README's table: each row a ratio against a named peer measured in the same run.",
           "", "| jaxhpo vs (same run) | figure | file and command |", "| --- | --- | --- |"]
    for row in rows[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        cmds = []
        for name in re.findall(r"`([^`]+\.json)`", cells[2]):
            path = os.path.join(RESULTS, name)
            try:
                with open(path) as f:
                    cmd = json.load(f).get("meta", {}).get("command", "?")
            except (OSError, ValueError):
                cmd = "file missing"
            cmds.append(f"`{name}`: `{cmd}`")
        out.append(f"| {cells[0]} | {cells[1]} | {'; '.join(cmds) or cells[2]} |")
    return "\n".join(out) + "\n\n## Every benchmark\n\nFor each benchmark, the newest file of " \
        "each distinct command (at most 3), then the search-quality comparisons.\n\n"


def setup(app):
    def write(app):
        from results_page import render  # docs/_ext/results_page.py

        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        files = newest_files()
        rank = {b: i for i, b in enumerate(ORDER)}
        ordered = dict(sorted(files.items(),
                              key=lambda kv: (rank.get(kv[0].split(" ")[0], len(ORDER)), kv[0])))
        text = headline_section() + render({**ordered, **quality_files()})
        old = open(OUT).read() if os.path.exists(OUT) else None
        if text != old:  # keep the mtime when nothing changed (incremental builds)
            with open(OUT, "w") as f:
                f.write(text)

    app.connect("builder-inited", write)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
