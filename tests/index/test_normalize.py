from hypothesis import given
from hypothesis import strategies as st

from index.normalize import fold_char, normalize
from tests.conftest import DHSC_DOC, NHS_CORPUS


def test_nbsp_and_curly_quotes_fold_but_offsets_point_at_originals():
    text = "DHSC\u00a0said: \u201cno plans\u201d \u2014 it\u2019s final."
    norm = normalize(text)
    assert norm.text == 'DHSC said: "no plans" - it\'s final.'
    start = norm.text.index('"no plans"')
    s, e = norm.to_original(start, start + len('"no plans"'))
    assert text[s:e] == "\u201cno plans\u201d"


def test_collapsed_spaces_map_to_a_span_covering_them():
    text = "a  \u00a0 b"
    norm = normalize(text)
    assert norm.text == "a b"
    assert norm.to_original(0, 3) == (0, len(text))


def test_seed_document_round_trip():
    text = (NHS_CORPUS / DHSC_DOC).read_text(encoding="utf-8")
    assert "\u00a0" in text and "\u2019" in text
    norm = normalize(text)
    i = norm.text.index("no plans and no need")
    s, e = norm.to_original(i, i + len("no plans and no need"))
    assert text[s:e] == "no plans and no need"


@given(st.text(max_size=300))
def test_every_normalised_char_comes_from_its_original(text):
    norm = normalize(text)
    assert len(norm.offsets) == len(norm.text)
    assert list(norm.offsets) == sorted(norm.offsets)
    for c, off in zip(norm.text, norm.offsets, strict=True):
        folded = fold_char(text[off])
        assert c in folded or (c == " " and folded in (" ", "\t"))


@given(st.text(max_size=200), st.data())
def test_any_span_maps_inside_the_original(text, data):
    norm = normalize(text)
    if not norm.text:
        return
    a = data.draw(st.integers(0, len(norm.text) - 1))
    b = data.draw(st.integers(a + 1, len(norm.text)))
    s, e = norm.to_original(a, b)
    assert 0 <= s < e <= len(text)
