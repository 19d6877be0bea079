"""Rebuild summary.json and report.md from a results.jsonl (e.g. of an interrupted run).

    python -m eval.summarize OUTDIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eval.report import summary_table, write_report
from eval.runner import summarize


def summarize_dir(out_dir: Path, meta: dict | None = None) -> dict:
    out_dir = Path(out_dir)
    rows: dict[str, list[dict]] = {}
    for line in (out_dir / "results.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            rows.setdefault(r["mode"], []).append(r)
    ids = {r["id"] for rs in rows.values() for r in rs}
    summary = {"meta": dict(meta or {}, n_questions=len(ids), modes=list(rows),
                            rebuilt_from="results.jsonl"),
               "modes": {m: summarize(rs) for m, rs in rows.items()}}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    write_report(out_dir, summary, rows)
    return summary


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m eval.summarize OUTDIR")
    print(summary_table(summarize_dir(Path(args[0]))["modes"]))


if __name__ == "__main__":
    main()
