"""EPUB e-books as text: the chapters in reading (spine) order, one line per paragraph.

An EPUB is a zip of XHTML pages listed by its package file; zipfile, defusedxml and
Beautiful Soup read it. (EbookLib, the usual library, is AGPL-licensed, which this MIT
tool does not take on for a few dozen lines of reading.)"""

from __future__ import annotations

import io
import posixpath
import zipfile
from urllib.parse import unquote

from index.errors import DocumentError
from index.load.extract import (
    UNPACKED_FACTOR,
    Extracted,
    TextBuilder,
    check_text_size,
    check_unpacked_size,
    html_lines,
)

_HTML_TYPES = ("application/xhtml+xml", "text/html", "application/xml")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_all(root, name: str) -> list:
    return [el for el in root.iter() if isinstance(el.tag, str) and _local(el.tag) == name]


def read_epub(data: bytes, path: str, limit: int) -> Extracted:
    from defusedxml import ElementTree

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DocumentError(path, f"corrupted or unreadable EPUB e-book ({exc})") from exc
    with zf:
        check_unpacked_size(zf, path, limit * UNPACKED_FACTOR)
        names = set(zf.namelist())
        try:
            container = ElementTree.fromstring(zf.read("META-INF/container.xml"))
            rootfiles = [el.get("full-path") for el in _find_all(container, "rootfile")]
            opf_path = next(p for p in rootfiles if p)
            opf = ElementTree.fromstring(zf.read(opf_path))
        except (KeyError, StopIteration, ElementTree.ParseError, ValueError) as exc:
            raise DocumentError(path, "corrupted or unreadable EPUB e-book (no readable "
                                      "package file)") from exc
        if "META-INF/encryption.xml" in names:
            locked = zf.read("META-INF/encryption.xml")
            if any(ext in locked for ext in (b".xhtml", b".html", b".htm")):
                raise DocumentError(path, "DRM-protected e-book: its chapters are "
                                          "encrypted and cannot be read")
        base = posixpath.dirname(opf_path)
        manifest = {el.get("id"): (el.get("href") or "", el.get("media-type") or "")
                    for el in _find_all(opf, "item")}
        titles = [el.text for el in _find_all(opf, "title") if el.text and el.text.strip()]
        b = TextBuilder()
        for ref in _find_all(opf, "itemref"):
            href, media = manifest.get(ref.get("idref"), ("", ""))
            if not href or (media and media not in _HTML_TYPES):
                continue
            name = posixpath.normpath(posixpath.join(base, unquote(href.split("#")[0])))
            if name not in names:
                continue
            for line in html_lines(zf.read(name)):
                b.block(line)
            check_text_size(b.size, path, limit)
    return b.build(titles[0] if titles else "")
