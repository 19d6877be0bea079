"""E-mail (.eml) as text: its From, To, Cc, Date and Subject lines, then the message
(the plain-text part, else the HTML one), then each attachment by name, with the text
of those this tool can read. Python's ``email`` package does the parsing."""

from __future__ import annotations

from collections.abc import Callable
from email import policy
from email.parser import BytesParser

from index.errors import DocumentError
from index.load.extract import Extracted, TextBuilder, check_text_size, html_lines

HEADERS = ("From", "To", "Cc", "Date", "Subject")
# reads an attachment (file name, bytes) into its text, or None when it is not read
AttachmentReader = Callable[[str, bytes], Extracted | None]


def _content(part) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AssertionError):  # unknown or wrong charset
        payload = part.get_payload(decode=True) or b""
        return payload.decode("latin-1") if isinstance(payload, bytes) else str(payload)


def read_eml(data: bytes, path: str, limit: int,
             read_attachment: AttachmentReader | None = None,
             notes: list[str] | None = None) -> Extracted:
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data)
        headers = [(h, str(msg[h])) for h in HEADERS if msg[h] is not None]
    except Exception as exc:  # noqa: BLE001 - malformed headers raise many kinds
        raise DocumentError(path, f"unreadable e-mail ({type(exc).__name__}: {exc})") from exc
    if not any(h in ("From", "Subject", "Date") for h, _ in headers):
        raise DocumentError(path, "not an e-mail: no From, Subject or Date header")
    b = TextBuilder()
    for name, value in headers:
        b.line(f"{name}: {' '.join(value.split())}")
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = _content(body)
        if body.get_content_subtype() == "html":
            for line in html_lines(content):
                b.block(line)
        else:
            for para in content.split("\n\n"):
                b.block(para)
    for part in msg.iter_attachments():
        name = part.get_filename() or "unnamed"
        b.block(f"Attachment: {name}")
        if read_attachment is None:
            continue
        try:
            payload = part.get_payload(decode=True) or b""
            got = read_attachment(name, payload)
        except DocumentError as err:
            if notes is not None:
                notes.append(f"attachment {name} not read: {err.reason}")
            continue
        if got is not None:
            for para in got.text.split("\n\n"):
                b.block(para)
        check_text_size(b.size, path, limit)
    check_text_size(b.size, path, limit)
    subject = str(msg["Subject"] or "")
    return b.build(" ".join(subject.split()))
