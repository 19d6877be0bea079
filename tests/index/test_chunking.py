import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.chunking import ChunkerConfig, chunk_document, split_sentences
from index.types import Document
from tests.conftest import DHSC_DOC, NHS_CORPUS


def make_doc(text: str, doc_id: str = "d.txt") -> Document:
    return Document(id=doc_id, title="t", text=text, kind="txt", hash="h")


def test_headlines_and_sentences_are_separate_spans():
    text = "WHY IT MATTERS\nThe DHSC denied it. It said \u201cno plans\u201d.\n"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "WHY IT MATTERS", "The DHSC denied it.", "It said \u201cno plans\u201d."]


def test_chunks_index_the_original_text_and_keep_sentence_spans():
    text = (NHS_CORPUS / DHSC_DOC).read_text(encoding="utf-8")
    doc = make_doc(text, DHSC_DOC)
    chunks = chunk_document(doc, ChunkerConfig(chunk_words=60, overlap_words=15))
    assert len(chunks) > 3
    for ch in chunks:
        assert ch.text == text[ch.start:ch.end]
        assert ch.sentences[0][0] == ch.start and ch.sentences[-1][1] == ch.end
        for s, e in ch.sentences:
            assert ch.start <= s < e <= ch.end
            assert text[s:e].strip() == text[s:e]
    covered = {s for ch in chunks for s in ch.sentences}
    assert covered == set(split_sentences(text, max_words=60))


def test_consecutive_chunks_overlap_by_whole_sentences():
    text = " ".join(f"Sentence number {i} has five words." for i in range(40))
    chunks = chunk_document(make_doc(text), ChunkerConfig(chunk_words=30, overlap_words=12))
    for a, b in zip(chunks, chunks[1:], strict=False):
        shared = set(a.sentences) & set(b.sentences)
        assert 1 <= len(shared) <= 2
        assert b.start < a.end


def test_no_overlap_gives_a_partition():
    text = " ".join(f"Sentence number {i} has five words." for i in range(40))
    chunks = chunk_document(make_doc(text), ChunkerConfig(chunk_words=30, overlap_words=0))
    sents = [s for ch in chunks for s in ch.sentences]
    assert len(sents) == len(set(sents)) == 40


def test_text_the_segmenter_drops_is_kept_as_a_span():
    # pysbd returns no sentence for " !!"; the text must still be indexed
    assert split_sentences(" !!") == [(1, 3)]
    assert split_sentences("Fine. !!") == [(0, 5), (6, 8)]


def test_long_sentences_are_cut_at_word_boundaries():
    text = " ".join(["word"] * 500)
    chunks = chunk_document(make_doc(text), ChunkerConfig(chunk_words=100, overlap_words=0))
    assert len(chunks) == 5
    assert all(len(ch.text.split()) == 100 for ch in chunks)


@pytest.mark.parametrize("words,overlap", [(4, 0), (50, 50), (50, -1)])
def test_invalid_chunker_settings_are_rejected(words, overlap):
    with pytest.raises(ValueError, match="must be"):
        ChunkerConfig(chunk_words=words, overlap_words=overlap)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\u00a0\u201c\u201d\u2019'\t")),
               max_size=400))
def test_any_text_chunks_into_exact_spans(text):
    doc = make_doc(text)
    for ch in chunk_document(doc, ChunkerConfig(chunk_words=8, overlap_words=3)):
        assert ch.text == text[ch.start:ch.end]
        assert ch.text.strip()
        for s, e in ch.sentences:
            assert 0 <= s < e <= len(text)


ABBREVIATED = ("Dr. Smith met Mr. Jones at 5 p.m. on Jan. 5. He paid $3.50 for No. 5, i.e. the "
               "best one. See fig. 3 and vol. 2 of the U.S. report. St. Louis is big. Prof. X "
               "agreed. It cost approx. 40 USD. Gen. Lee and Capt. Hook met at 10 a.m. today.")


@pytest.mark.parametrize("text", [ABBREVIATED, (NHS_CORPUS / DHSC_DOC).read_text("utf-8"),
                                  " ".join([ABBREVIATED] * 20)])
def test_the_fast_abbreviation_pass_gives_pysbds_sentences(text):
    import pysbd

    from index.chunking import _pysbd_sentences

    plain = pysbd.Segmenter(language="en", clean=False, char_span=False)
    assert _pysbd_sentences(text) == plain.processor(text).process()
    assert "Dr. Smith met Mr. Jones at 5 p.m. on Jan. 5." in _pysbd_sentences(ABBREVIATED)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("aB .\t\r\n") + ["Dr.", "\u2019", "\u00a0", "\u00ad",
                                                     "No.", "  ", "U.S.", "5", "p.m."]),
                max_size=30).map("".join))
def test_the_fast_abbreviation_pass_matches_pysbd_on_any_text(text):
    import pysbd

    from index.chunking import _pysbd_sentences

    plain = pysbd.Segmenter(language="en", clean=False, char_span=False)
    line = text.replace("\n", " ")
    assert _pysbd_sentences(line) == (plain.processor(line).process() if line else [])
