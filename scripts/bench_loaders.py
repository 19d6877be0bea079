"""Indexing speed per page of text for each document format, side by side with the PDF
loader as it was before page numbers (pypdf's text of each page, joined), and OCR time
per scanned page.

The same 20 pages of prose are written as a PDF and in every other format. For each, the
loader alone (file bytes -> text, median of --repeats runs) and a whole index build (load,
chunk, embed with MiniLM, write; median of --builds runs) are timed and divided by the 20
pages. Ratios are to the old PDF loader measured in the same run.

    python scripts/bench_loaders.py [--pages 20] [--repeats 5] [--builds 3] [--ocr-pages 3]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import docfiles  # noqa: E402

WORDS = ("harbour ferry council orchard lantern survey otter bridge library station "
         "volunteer meeting report timetable pier crane village river bakery museum").split()


def page_lines(n: int, lines: int = 38, words: int = 11) -> list[list[str]]:
    """``n`` pages of plain sentences, ``lines`` lines of ``words`` words each."""
    out = []
    for p in range(n):
        page = []
        for i in range(lines):
            w = [WORDS[(p * 7 + i * 3 + j) % len(WORDS)] for j in range(words)]
            page.append(f"The {' '.join(w)} {p * 100 + i}.")
        out.append(page)
    return out


def old_pdf_text(data: bytes) -> tuple[str, str]:
    """The PDF loader before page numbers (index/load/loaders.py's _pdf_text at the time)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    meta = reader.metadata
    title = (meta.title or "") if meta else ""
    return "\n\n".join(p for p in pages if p), str(title).strip()


def write_formats(root: Path, pages: list[list[str]]) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    paras = [" ".join(p) for p in pages]  # one paragraph per page of text
    files = {
        "pdf": docfiles.write_pdf(root / "doc.pdf", pages),
        "docx": docfiles.write_docx(root / "doc.docx", paras),
        "pptx": docfiles.write_pptx(root / "doc.pptx", [{"title": f"Page {i}", "lines": p}
                                                        for i, p in enumerate(pages, 1)]),
        "xlsx": docfiles.write_xlsx(root / "doc.xlsx", {"Text": [[ln] for p in pages
                                                                 for ln in p]}),
        "odt": docfiles.write_odt(root / "doc.odt", paras),
        "epub": docfiles.write_epub(root / "doc.epub", "Bench", [(f"Chapter {i}", [p])
                                                                for i, p in enumerate(paras)]),
        "eml": docfiles.write_eml(root / "doc.eml", "a@example.org", "b@example.org", "Bench",
                                  "Mon, 03 Jun 2024 09:00:00 +0100", "\n\n".join(paras)),
        "rtf": docfiles.write_rtf(root / "doc.rtf", paras),
    }
    return files


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--builds", type=int, default=3)
    ap.add_argument("--ocr-pages", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from index.builder import build_index
    from index.embed.embedders import SentenceTransformerEmbedder
    from index.load import pdf as pdf_mod
    from index.load.extract import Extracted
    from index.load.loaders import load_document

    emb = SentenceTransformerEmbedder()
    emb.warm_up()
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = write_formats(root / "files", page_lines(args.pages))
        new_pdf = pdf_mod.read_pdf

        def old_reader(data: bytes, path: str) -> Extracted:
            return Extracted(*old_pdf_text(data))

        cases = [("pdf (before)", files["pdf"], old_reader)] + \
            [(kind, path, None) for kind, path in files.items()]
        for name, path, reader in cases:
            pdf_mod.read_pdf = reader or new_pdf  # the loader looks it up when it runs
            try:
                chars = len(load_document(path, path.parent).text)
                load_s = median_time(lambda p=path: load_document(p, p.parent), args.repeats)
                folder = root / name.replace(" ", "_").strip("()")
                folder.mkdir()
                (folder / path.name).write_bytes(path.read_bytes())

                def build(f=folder):
                    build_index(f, root / "idx", emb, rebuild=True)

                build_s = median_time(build, args.builds)
            finally:
                pdf_mod.read_pdf = new_pdf
            rows[name] = {"chars": chars, "load_ms_per_page": 1000 * load_s / args.pages,
                          "index_ms_per_page": 1000 * build_s / args.pages}
        base = rows["pdf (before)"]
        for r in rows.values():
            r["load_ratio"] = r["load_ms_per_page"] / base["load_ms_per_page"]
            r["index_ratio"] = r["index_ms_per_page"] / base["index_ms_per_page"]
        scan = docfiles.write_scan_pdf(root / "scan.pdf",
                                       page_lines(args.ocr_pages, lines=30, words=7))
        t0 = time.perf_counter()
        doc = load_document(scan, root)
        ocr_s = (time.perf_counter() - t0) / args.ocr_pages
    print(f"{'format':14} {'chars':>7} {'load ms/page':>13} {'ratio':>6} "
          f"{'index ms/page':>14} {'ratio':>6}")
    for name, r in rows.items():
        print(f"{name:14} {r['chars']:7d} {r['load_ms_per_page']:13.2f} {r['load_ratio']:6.2f} "
              f"{r['index_ms_per_page']:14.1f} {r['index_ratio']:6.2f}")
    print(f"OCR: {ocr_s:.2f} s per scanned page ({args.ocr_pages} pages, "
          f"{doc.ocr_pages} read, {len(doc.text)} characters)")
    if args.out:
        args.out.write_text(json.dumps({"pages": args.pages, "formats": rows,
                                        "ocr_seconds_per_page": round(ocr_s, 2)},
                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
