from rag.retrieve.evidence import score_sentences
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


def test_sentence_vectors_are_kept_across_questions():
    from rag.retrieve.evidence import SentenceVectors

    text = f"{QUOTE} Bolton said the workload was too high. NHSD cut 158 jobs in 2018."
    second, third = text.index("Bolton"), text.index("NHSD cut")
    spans = ((0, len(QUOTE)), (second, third - 1), (third, len(text)))
    p = Passage("c1", "d.txt", "D", 0, len(text), text, 1.0, rank=1, sentences=spans)
    emb = HashEmbedder()
    cache = SentenceVectors(emb, size=2)
    plain = score_sentences("Who is NHSD working with?", [p], HashEmbedder())
    cached = score_sentences("Who is NHSD working with?", [p], emb, cache=cache)
    assert [(s.text, s.score) for s in cached] == [(s.text, s.score) for s in plain]
    embedded = emb.embedded
    again = score_sentences("How many jobs did NHSD cut?", [p], emb, cache=cache)
    assert len(cache) == 2  # the oldest sentence made room
    assert emb.embedded - embedded == 1  # only the sentence that was dropped
    assert again[0].text.startswith("NHSD cut 158 jobs")

