from rag.evidence import score_sentences
from rag.types import Passage
from tests.fakes import HashEmbedder

QUOTE = "We are working with colleagues in NHSX and NHSE to ensure the workload is right."


def test_a_sentence_repeated_in_the_passages_is_evidence_once():
    text = f"{QUOTE} Bolton said more. \u201c{QUOTE}\u201d"
    a, b = len(QUOTE), len(QUOTE) + 18
    spans = ((0, a), (a + 1, b), (b + 1, len(text)))
    p = Passage("c1", "d.txt", "D", 0, len(text), text, 1.0, rank=1, sentences=spans)
    scored = score_sentences("Who is NHSD working with?", [p], HashEmbedder())
    assert [s.text for s in scored].count(QUOTE) == 1
    assert sum("working with colleagues" in s.text for s in scored) == 1
