"""The multi-turn gold format and its evaluation, on a synthetic corpus with a hashing
embedder and a scripted model; the bundled conversation sets load and their evidence is
in their corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.gold import GoldError, is_chat_gold, load_chat_gold
from eval.run import evaluate
from rag.config import Settings
from rag.pipeline import Pipeline
from tests.conftest import KARROW_CORPUS, NHS_CORPUS
from tests.fakes import ChatGenerator, HashEmbedder, always_answer

REPO = Path(__file__).resolve().parents[2]
TOWER = "How tall is the tower of the lighthouse at Karrow Point?"
TURNS = [
    {"conversation": "a", "turn": 1, "id": "a1", "question": "Who built the lighthouse at "
     "Karrow Point?", "answers": ["Alice Brennan"], "answerable": True,
     "evidence": [{"doc": "lighthouse.txt", "text": "the engineer Alice Brennan"}]},
    {"conversation": "a", "turn": 2, "id": "a2", "question": "How tall is its tower?",
     "standalone": TOWER, "answers": ["31 metres"], "answerable": True,
     "evidence": [{"doc": "lighthouse.txt", "text": "Its tower stands 31 metres tall"}]},
    {"conversation": "b", "turn": 1, "id": "b1", "question": "How many members does the "
     "Karrow fishing cooperative have?", "answers": ["46"], "answerable": True,
     "evidence": [{"doc": "council.txt", "text": "The fishing cooperative has 46 members"}]},
    {"conversation": "b", "turn": 2, "id": "b2", "question": "Who chairs it?",
     "standalone": "Who chairs the Karrow fishing cooperative?", "answers": [],
     "answerable": False, "evidence": []},
]


def write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_conversations_load_in_order_and_are_told_apart(tmp_path):
    path = write(tmp_path / "chat.jsonl", list(reversed(TURNS)))
    turns = load_chat_gold(path)
    assert [(t.conversation, t.turn) for t in turns] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert [t.follow_up for t in turns] == [False, True, False, True]
    assert turns[1].standalone_item().question == TOWER
    assert is_chat_gold(path) and not is_chat_gold(REPO / "eval" / "nhs_gold.jsonl")


@pytest.mark.parametrize("change, message", [
    ({"turn": 3}, "number its turns"), ({"conversation": ""}, "conversation"),
    ({"turn": "2"}, "'turn'"), ({"standalone": " "}, "standalone")])
def test_bad_conversation_lines_are_named(tmp_path, change, message):
    rows = [dict(TURNS[0]), dict(TURNS[1], **change)]
    with pytest.raises(GoldError, match=message):
        load_chat_gold(write(tmp_path / "bad.jsonl", rows))


def test_eval_asks_follow_ups_with_history_beside_their_standalone_form(tmp_path):
    gen = ChatGenerator(["The lighthouse was built in 1872 by the engineer Alice Brennan [1].",
                         "Its tower stands 31 metres tall [1].",
                         "Its tower stands 31 metres tall [1].",
                         "The fishing cooperative has 46 members [1].",
                         "NOT IN DOCUMENTS"], TOWER)
    pipe = Pipeline(Settings(corpus=KARROW_CORPUS, index=tmp_path / "idx"),
                    embedder=HashEmbedder(), generator=gen, decision=always_answer())
    gold = write(tmp_path / "chat.jsonl", TURNS)
    summary = evaluate(tmp_path / "out", gold=gold, corpus=KARROW_CORPUS, pipeline=pipe,
                       answer_mode="verified", progress=False)
    rows = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").open()]
    assert len(rows) == 2 * len(TURNS)
    follow = {r["id"]: r for r in rows if r["form"] == "follow-up"}
    assert follow["a2"]["rewritten"] and follow["a2"]["standalone_question"] == TOWER
    assert follow["a2"]["correct"] and not follow["a1"]["rewritten"]
    assert len(gen.rewrites) == 2  # a2 and b2; b1 and a1 stand alone
    # the earlier turn of its own conversation, not of another, is in the rewrite prompt
    assert "lighthouse" in gen.rewrites[0][1]["content"]
    assert "lighthouse" not in gen.rewrites[1][1]["content"]
    modes = summary["modes"]
    assert modes["follow-up"]["n"] == modes["standalone"]["n"] == 4
    assert modes["follow-up (turns needing context)"]["n"] == 2
    assert summary["chat"]["rewritten"] == 2 and summary["chat"]["n_follow_ups"] == 2
    assert summary["chat"]["rewrites_used"] == 2
    assert summary["chat"]["detection"]["recall"] == 1.0
    assert "## Conversations" in (tmp_path / "out" / "report.md").read_text()


def test_the_bundled_conversation_sets_hold_their_evidence():
    from eval.gold import check_evidence
    from eval.squad import read_squad, squad_documents

    nhs = load_chat_gold(REPO / "eval" / "chat_gold_nhs.jsonl")
    docs = {p.name: p.read_text(encoding="utf-8") for p in NHS_CORPUS.glob("*.txt")}
    check_evidence([t.item for t in nhs], docs)
    squad_file = REPO.parent / "shared" / "datasets" / "squad_v2_dev12.json"
    squad = load_chat_gold(REPO / "eval" / "chat_gold_squad.jsonl")
    if squad_file.is_file():
        check_evidence([t.item for t in squad], squad_documents(read_squad(squad_file)))
    for turns in (nhs, squad):
        convs = {t.conversation for t in turns}
        assert len(convs) >= 20
        assert all(2 <= sum(t.conversation == c for t in turns) <= 4 for c in convs)
        assert any(not t.item.answerable and t.turn > 1 for t in turns)


def test_the_gap_interval_resamples_whole_conversations():
    from eval.chat import gap_interval

    def row(conv, i, correct, answerable=True):
        return {"id": f"{conv}-{i}", "conversation": conv, "answerable": answerable,
                "correct": correct, "refusal_correct": correct}

    # two conversations: one loses both of its turns as follow-ups, one loses none
    follow = [row("a", 1, 0.0), row("a", 2, 0.0), row("b", 1, 1.0), row("b", 2, 1.0)]
    alone = [row("a", 1, 1.0), row("a", 2, 1.0), row("b", 1, 1.0), row("b", 2, 1.0)]
    lo, hi = gap_interval(follow, alone, "correct")
    assert lo == -100.0 and hi == 0.0  # all of a, none of a, or half
    assert gap_interval(follow, follow, "correct") == [0.0, 0.0]
    assert gap_interval(follow, alone, "refusal_correct") is None  # no unanswerable turns
