"""The ten-question check of the document formats: a folder of one file per format (Word,
PowerPoint, Excel, EPUB, e-mail, OpenDocument, RTF), a scanned PDF, a 3-page PDF whose
fact is on page 3 and an image, each holding one fact no other file holds; indexed with
the real embedding model and asked with the default generator (or --model).

An answer counts as right when it is not refused, holds the expected words, and cites the
file that holds the fact (at the right page or slide, for PDFs and slides).

    python scripts/formats_check.py [--model NAME] [--out docs/bench/formats_check.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import docfiles  # noqa: E402  - the same writers the tests use

NOTE = ["The annual report was read aloud at the meeting.",
        "Refreshments were provided by volunteers.", "The next meeting is in the autumn."]

# file, question, words the answer must hold, page or slide (None: no pages)
QUESTIONS = [
    ("harbour_minutes.docx", "How much does the new crane approved by the harbour board cost?",
     "86,000", None),
    ("apiary.pptx", "How much honey did each hive in the Moorfield apiary produce?",
     "23", 3),
    ("rota.xlsx", "Which station does Priya Nair work at?", "Glenmore", None),
    ("lantern.epub", "In which village did the lantern maker Tobias Crane live?",
     "Ashby Wold", None),
    ("library.eml", "How often will the mobile library visit Pennock Green?",
     "second Tuesday", None),
    ("allotments.odt", "How many members does the allotment society have?", "142", None),
    ("bridge.rtf", "When was the Hollin footbridge closed for repairs?", "March", None),
    ("tithe.pdf", "When was the tithe barn roof rethatched?", "1987", 2),
    ("survey.pdf", "How many otters did the river survey count along the Wenn?", "57", 3),
    ("notice.png", "When does the swimming pool close on Fridays?", "eight", None),
]


def write_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docfiles.write_docx(root / "harbour_minutes.docx", [
        ("heading", "Harbour board minutes"), NOTE[0],
        "The harbour board approved a new crane costing 86,000 pounds.",
        ("table", [["Item", "Decision"], ["Crane", "Approved"], ["Slipway", "Deferred"]]),
        NOTE[2]])
    docfiles.write_pptx(root / "apiary.pptx", [
        {"title": "Moorfield apiary", "lines": ["Season review"]},
        {"title": "Weather", "lines": ["A wet spring delayed the first inspection."]},
        {"title": "Honey", "lines": ["Each hive in the Moorfield apiary produced 23 "
                                     "kilograms of honey."]},
        {"title": "Next year", "lines": [NOTE[2]]}])
    docfiles.write_xlsx(root / "rota.xlsx", {"Rota": [
        ["Name", "Shift", "Station"], ["Priya Nair", "Night", "Glenmore"],
        ["Tom Hale", "Day", "Kirkby"], ["Ruth Obi", "Day", "Glenmore"]]})
    docfiles.write_epub(root / "lantern.epub", "The Lantern Maker", [
        ("Chapter One", [NOTE[1], "The lantern maker Tobias Crane lived in the village of "
                                  "Ashby Wold."]),
        ("Chapter Two", ["He sold his lanterns at the winter fair."])])
    docfiles.write_eml(root / "library.eml", "Library Service <library@example.org>",
                       "Residents <residents@example.org>", "Mobile library timetable",
                       "Mon, 03 Jun 2024 09:00:00 +0100",
                       "Dear residents,\n\nThe mobile library will visit Pennock Green every "
                       "second Tuesday.\n\nKind regards,\nLibrary Service")
    docfiles.write_odt(root / "allotments.odt", [
        ("heading", "Allotment society newsletter"), NOTE[1],
        "The allotment society has 142 members.", NOTE[2]])
    docfiles.write_rtf(root / "bridge.rtf", [
        "Footpath report", "The Hollin footbridge was closed for repairs in March.", NOTE[0]])
    docfiles.write_scan_pdf(root / "tithe.pdf", [
        ["Parish history society", "Notes on the old buildings"],
        ["The tithe barn roof was rethatched in 1987."]])
    docfiles.write_pdf(root / "survey.pdf", [
        ["River Wenn survey", NOTE[0]], ["Method", "Volunteers walked the banks at dawn."],
        ["Results", "The river survey counted 57 otters along the Wenn."]],
        title="River Wenn survey")
    docfiles.write_image(root / "notice.png", ["Leisure centre notice",
                                               "The swimming pool closes at eight on Fridays."])
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="generator [default: the tool's default]")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    from rag.config import Settings
    from rag.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_folder(Path(tmp) / "docs")
        settings = Settings(corpus=corpus, index=Path(tmp) / "idx")
        if args.model:
            settings = settings.with_overrides(model=args.model)
        pipe = Pipeline(settings)
        report = pipe.index()
        print(f"index: {report.summary()}; skipped: {[str(e) for e in report.errors]}")
        rows = []
        for doc, question, expected, page in QUESTIONS:
            t0 = time.perf_counter()
            ans = pipe.ask(question)
            cited = [(c.doc, c.page) for c in ans.citations]
            right = (not ans.refused and expected.lower() in ans.answer.lower()
                     and (doc, page) in cited)
            rows.append({"file": doc, "question": question, "expected": expected,
                         "page": page, "answer": ans.answer, "refused": ans.refused,
                         "cited": cited, "right": right,
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(f"{'RIGHT' if right else 'wrong'} {doc} (page {page}): {ans.answer!r} "
                  f"cites {cited}")
    n_right = sum(r["right"] for r in rows)
    summary = {"model": pipe.settings.model, "right": n_right, "questions": len(rows),
               "skipped": [str(e) for e in report.errors], "ocr_pages": report.ocr_pages,
               "ocr_seconds_per_page": round(report.ocr_seconds / max(report.ocr_pages, 1), 2),
               "index": report.summary(), "rows": rows}
    print(f"{n_right} of {len(rows)} answered right with {pipe.settings.model}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
