"""Reading documents: the folder scan and one reader per format (text, HTML, PDF and OCR,
office files, OpenDocument, EPUB, e-mail)."""
