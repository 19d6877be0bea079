"""Real documents for the tests, written with the libraries that read them (python-docx,
python-pptx, openpyxl, odfpy), the standard library (EPUB, e-mail, RTF), matplotlib (PDF
with a text layer) and Pillow (scans and images, which have none)."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

# a block of a word-processing document: a paragraph, or ("heading", text),
# ("list", [items]) or ("table", [[header cells], [cells], ...])
Block = str | tuple


def write_docx(path: Path, blocks: list[Block], title: str = "") -> Path:
    import docx

    d = docx.Document()
    if title:
        d.core_properties.title = title
    for block in blocks:
        if isinstance(block, str):
            d.add_paragraph(block)
        elif block[0] == "heading":
            d.add_heading(block[1], level=1)
        elif block[0] == "list":
            for item in block[1]:
                d.add_paragraph(item, style="List Bullet")
        elif block[0] == "table":
            rows = block[1]
            table = d.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
    d.save(path)
    return path


def write_pptx(path: Path, slides: list[dict]) -> Path:
    """``slides``: {"title", "lines", optional "notes", optional "table"} each."""
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    for s in slides:
        slide = prs.slides.add_slide(prs.slide_layouts[1])  # title and content
        slide.shapes.title.text = s["title"]
        body = slide.placeholders[1].text_frame
        body.text = s["lines"][0] if s.get("lines") else ""
        for line in s.get("lines", [])[1:]:
            body.add_paragraph().text = line
        if s.get("table"):
            rows = s["table"]
            shape = slide.shapes.add_table(len(rows), len(rows[0]), Inches(1), Inches(5),
                                           Inches(8), Inches(1.5))
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = value
        if s.get("notes"):
            slide.notes_slide.notes_text_frame.text = s["notes"]
    prs.save(path)
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def write_odt(path: Path, blocks: list[Block]) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, P

    doc = OpenDocumentText()
    for block in blocks:
        if isinstance(block, str):
            doc.text.addElement(P(text=block))
        elif block[0] == "heading":
            doc.text.addElement(H(outlinelevel=1, text=block[1]))
        elif block[0] == "list":
            lst = List()
            for item in block[1]:
                li = ListItem()
                li.addElement(P(text=item))
                lst.addElement(li)
            doc.text.addElement(lst)
        elif block[0] == "table":
            doc.text.addElement(_odf_table(block[1], Table, TableColumn, TableRow, TableCell,
                                           P))
    doc.save(str(path))
    return path


def _odf_table(rows, Table, TableColumn, TableRow, TableCell, P, name="Table1"):  # noqa: N803
    table = Table(name=name)
    table.addElement(TableColumn(numbercolumnsrepeated=len(rows[0])))
    for row in rows:
        tr = TableRow()
        for value in row:
            cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        table.addElement(tr)
    return table


def write_ods(path: Path, sheets: dict[str, list[list]]) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        doc.spreadsheet.addElement(_odf_table(rows, Table, TableColumn, TableRow, TableCell,
                                              P, name=name))
    doc.save(str(path))
    return path


def write_odp(path: Path, slides: list[dict]) -> Path:
    from odf.draw import Frame, Page, TextBox
    from odf.namespaces import PRESENTATIONNS
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="PL")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    for i, s in enumerate(slides, start=1):
        page = Page(name=f"page{i}", masterpagename=master)
        doc.presentation.addElement(page)
        for cls, lines, y in (("title", [s["title"]], "1cm"), ("outline", s["lines"], "4cm")):
            frame = Frame(width="20cm", height="3cm", x="1cm", y=y)
            frame.setAttrNS(PRESENTATIONNS, "class", cls)
            box = TextBox()
            for line in lines:
                box.addElement(P(text=line))
            frame.addElement(box)
            page.addElement(frame)
    doc.save(str(path))
    return path


def write_epub(path: Path, title: str, chapters: list[tuple[str, list[str]]]) -> Path:
    """An EPUB 3 book: mimetype first and stored, container, package file, one XHTML
    page per chapter in the spine."""
    items, refs = [], []
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr("META-INF/container.xml",
                    '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:'
                    'tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/'
                    'content.opf" media-type="application/oebps-package+xml"/></rootfiles>'
                    '</container>')
        for i, (heading, paras) in enumerate(chapters, start=1):
            body = "".join(f"<p>{p}</p>" for p in paras)
            zf.writestr(f"OEBPS/ch{i}.xhtml",
                        f'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.'
                        f'org/1999/xhtml"><head><title>{heading}</title></head><body>'
                        f'<h1>{heading}</h1>{body}</body></html>')
            items.append(f'<item id="c{i}" href="ch{i}.xhtml" '
                         f'media-type="application/xhtml+xml"/>')
            refs.append(f'<itemref idref="c{i}"/>')
        zf.writestr("OEBPS/content.opf",
                    '<?xml version="1.0" encoding="utf-8"?><package version="3.0" xmlns='
                    '"http://www.idpf.org/2007/opf" unique-identifier="id"><metadata xmlns:'
                    f'dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
                    '<dc:identifier id="id">test-book</dc:identifier><dc:language>en'
                    f'</dc:language></metadata><manifest>{"".join(items)}</manifest>'
                    f'<spine>{"".join(refs)}</spine></package>')
    return path


def write_eml(path: Path, sender: str, to: str, subject: str, date: str, body: str,
              html: str | None = None, attachments: list[tuple[str, bytes]] = ()) -> Path:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Date"] = sender, to, subject, date
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream",
                           filename=name)
    path.write_bytes(bytes(msg))
    return path


def write_rtf(path: Path, paragraphs: list[str]) -> Path:
    def esc(text: str) -> str:
        out = []
        for ch in text:
            if ch in "\\{}":
                out.append("\\" + ch)
            elif ord(ch) > 127:
                out.append(f"\\u{ord(ch) if ord(ch) < 32768 else ord(ch) - 65536}?")
            else:
                out.append(ch)
        return "".join(out)

    body = "".join(f"{{\\pard {esc(p)}\\par}}\n" for p in paragraphs)
    path.write_text("{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times New Roman;}}\n" + body + "}",
                    encoding="ascii")
    return path


def pdf_pages(pages: list[list[str]], title: str = "") -> bytes:
    """A PDF with a text layer: one page per list of lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Title": title} if title else None) as pdf:
        for lines in pages:
            fig = plt.figure(figsize=(8.27, 11.69))
            for i, line in enumerate(lines):
                fig.text(0.08, 0.92 - i * 0.03, line, fontsize=10)
            pdf.savefig(fig)
            plt.close(fig)
    return buf.getvalue()


def write_pdf(path: Path, pages: list[list[str]], title: str = "") -> Path:
    path.write_bytes(pdf_pages(pages, title))
    return path


def text_image(lines: list[str], width: int = 1700, size: int = 36):
    """A white page with black text: what a scanner gives, as a PIL image."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    img = Image.new("RGB", (width, max(400, 200 + len(lines) * int(size * 1.7))), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((120, 120 + i * int(size * 1.7)), line, fill="black", font=font)
    return img


def write_scan_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF of page images only, no text layer: a scan."""
    images = [text_image(lines) for lines in pages]
    images[0].save(path, "PDF", resolution=200.0, save_all=True, append_images=images[1:])
    return path


def write_image(path: Path, lines: list[str]) -> Path:
    text_image(lines).save(path)
    return path
