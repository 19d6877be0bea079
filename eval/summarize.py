"""Rebuild summary.json and report.md from results.jsonl files, e.g. of an interrupted run
or of runs on parts of a gold set (rows are written as they are scored).

    python -m eval.summarize OUTDIR                  # OUTDIR/results.jsonl
    python -m eval.summarize OUTDIR A.jsonl B.jsonl  # merge into OUTDIR/results.jsonl

When merging, the first row for each (id, mode) wins.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eval.report import summary_table, write_report
from eval.runner import summarize


def read_rows(paths: list[Path]) -> list[dict]:
    rows, seen = [], set()
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                if (r["id"], r["mode"]) not in seen:
                    seen.add((r["id"], r["mode"]))
                    rows.append(r)
    return rows


def summarize_dir(out_dir: Path, sources: list[Path] | None = None,
                  meta: dict | None = None) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / "results.jsonl"
    flat = read_rows(list(sources) if sources else [results])
    if sources:
        results.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in flat),
                           encoding="utf-8")
    rows: dict[str, list[dict]] = {}
    for r in flat:
        rows.setdefault(r["mode"], []).append(r)
    ids = {r["id"] for r in flat}
    summary = {"meta": dict(meta or {}, n_questions=len(ids), modes=list(rows),
                            rebuilt_from=[str(p) for p in sources or [results]]),
               "modes": {m: summarize(rs) for m, rs in rows.items()}}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    write_report(out_dir, summary, rows)
    return summary


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.exit("usage: python -m eval.summarize OUTDIR [RESULTS.jsonl ...]")
    summary = summarize_dir(Path(args[0]), [Path(a) for a in args[1:]] or None)
    print(summary_table(summary["modes"]))


if __name__ == "__main__":
    main()
