"""The LLM teacher: reply parsing, prompts, the resumable cache, annotate, and the three backends
(an OpenAI-compatible llama.cpp server started here, llama.cpp in-process, transformers)."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from pathlib import Path

import pytest

from ragdistill.data.example import Example
from ragdistill.io import DataError
from ragdistill.teachers import (
    AnnotationCache,
    Completion,
    DecodingSettings,
    Teacher,
    TeacherError,
    annotate,
    build_prompt,
    build_teacher,
    parse_teacher_output,
    prompt_hash,
)
from ragdistill.teachers.openai_http import OpenAITeacher
from ragdistill.teachers.prompts import EVIDENCE_INSTRUCTION, HINT_INSTRUCTION, INSTRUCTIONS
from ragdistill.teachers.server import start_llama_server, stop_server

CHOICES = ["trees", "kids", "points", "rocks", "deep sea fish"]


# -- parsing ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, label, rationale", [
    ("Apples grow on trees. So the answer is (a) trees.", "trees", "Apples grow on trees."),
    ("Apples grow on trees.\nSo the answer is (a) trees.\n\nQ: Where do kids play?\nAnswer Choices: (a) x",
     "trees", "Apples grow on trees."),
    ("Apples grow on trees. So the answer is (a) trees. Q: What next? So the answer is (b) kids.", "trees", None),
    ("(b)", "kids", ""),
    ("(B) kids", "kids", ""),
    ("b", "kids", ""),
    ("The answer is b", "kids", ""),
    ("answer is B.", "kids", ""),
    ("Answer: c", "points", ""),
    ("The correct answer is: c) points", "points", ""),
    ("So the answer is option D.", "rocks", ""),
    ("trees", "trees", ""),
    ("Trees.", "trees", ""),
    ('So the answer is "trees".', "trees", ""),
    ("So the answer is **(a) trees**.", "trees", ""),
    ("The final answer is \\boxed{c}", "points", ""),
    ("Apples grow on trees.\n(a) trees", "trees", "Apples grow on trees."),
    ("Apples grow on trees. (a) trees", "trees", "Apples grow on trees."),
    ("Apples grow on trees.\n\ntrees", "trees", "Apples grow on trees."),
    ("They live deep down. So the answer is (e) deep sea fish.", "deep sea fish", "They live deep down."),
    ("So the answer is deep sea fish, since they live there", "deep sea fish", ""),  # not "fish" alone
    ("Wrong letter. So the answer is (b) trees.", "trees", "Wrong letter."),  # the text wins, as in the paper
    ("So the answer is (b) something else entirely.", "kids", ""),  # an explicit letter
    ("It says so. The answer is (a). So the answer is (c) points.", "points", None),  # the last one counts
    ("A: Kids like points. So the answer is (c) points.", "points", "Kids like points."),
])
def test_parse_choice_answers(text, label, rationale):
    got_rationale, got_label, how = parse_teacher_output(text, CHOICES)
    assert got_label == label, (text, how)
    if rationale is not None:
        assert got_rationale == rationale


@pytest.mark.parametrize("text", [
    "", "   ", "I don't know.", "So the answer is (f) nothing.", "So the answer is (a) trees or (b) kids.",
    "A tree is where apples grow.", "So the answer is none of these.", "Q: what?",
])
def test_unparseable_choice_answers_keep_the_text(text):
    rationale, label, how = parse_teacher_output(text, CHOICES)
    assert label is None
    assert how.startswith(("unparsed", "empty"))
    if text.strip() and not text.startswith("Q:"):
        assert rationale  # kept, never dropped


@pytest.mark.parametrize("text, label", [
    ("Birds fly. So the answer is yes.", "yes"),
    ("So the answer is No", "no"),
    ("Yes, because birds fly.", "yes"),
    ("No.", "no"),
    ("It cannot fly. So the answer is (no).", "no"),
])
def test_parse_yes_no(text, label):
    assert parse_teacher_output(text, None)[1] == label
    assert parse_teacher_output(text, None, task="yes_no")[1] == label
    assert parse_teacher_output(text, ["yes", "no"])[1] == label


@pytest.mark.parametrize("text, label, rationale", [
    ("Birds fly. So the answer is (a) yes.", "yes", "Birds fly."),
    ("So the answer is (b).", "no", ""),
    ("Yes, because birds fly.", "yes", "because birds fly"),
    ("Birds fly.\nNo", "no", "Birds fly."),
    ("Hmm.", None, "Hmm."),
])
def test_parse_yes_no_as_two_choices(text, label, rationale):
    """StrategyQA's loader gives the choices (a) yes (b) no; annotate parses with task="choice"."""
    assert parse_teacher_output(text, ["yes", "no"], task="choice")[:2] == (rationale, label)


@pytest.mark.parametrize("text, label", [
    ("He halves 84. The answer is (84 / 2).", "84 / 2"),
    ("The answer is ((19 - 6) + (18 - 15)).", "(19 - 6) + (18 - 15)"),
    ("The answer is 84 / 2 = 42.", "84 / 2"),
    ("The answer is 42.", "42"),
    ("The answer is $1,000.", "1000"),
    ("The answer is 12 apples.", "12"),
    ("The answer is twelve.", None),
])
def test_parse_equations(text, label):
    assert parse_teacher_output(text, None, task="arithmetic")[1] == label


# -- prompts ---------------------------------------------------------------------------------------------

def _demos(tiny_examples) -> list[Example]:
    return tiny_examples(6)[3:6]


def test_prompt_layout_and_shared_prefix(tiny_examples):
    examples, demos = tiny_examples(3), _demos(tiny_examples)
    plain = build_prompt(examples[0], demos, None)
    assert [m["role"] for m in plain] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert plain[0]["content"] == INSTRUCTIONS["choice"]
    assert plain[2]["content"] == "An apple is a fruit. So the answer is (a) apple."
    assert plain[-1]["content"].startswith("Q: Where do apples grow?\nAnswer Choices:\n(a) trees")
    rag = build_prompt(examples[1], demos, ["Kids  like\nto play.", "Play is fun."])
    assert rag[0]["content"] == f"{INSTRUCTIONS['choice']} {EVIDENCE_INSTRUCTION}"  # it may set the facts aside
    assert rag[1:-1] == plain[1:-1]  # demonstrations without facts of their own are the same
    assert rag[-1]["content"].startswith("Facts:\n- Kids like to play.\n- Play is fun.\n\nQ: What do kids like")
    # Every RAG prompt starts alike (the cached prefix), also one whose question found no facts.
    assert build_prompt(examples[2], demos, [])[:-1] == rag[:-1]
    assert build_prompt(examples[2], demos, [])[-1]["content"].startswith("Q: ")
    question_only = Example(id="q", input="Where?", label="b", source="t", choices=["a", "b"])
    assert "Answer Choices:\n(a) a\n(b) b" in build_prompt(question_only, [], None)[-1]["content"]
    arithmetic = Example(id="s", input="Tom has 3 apples and eats 1. How many are left?", label="3 - 1", source="t")
    assert build_prompt(arithmetic, [], None)[0]["content"] == INSTRUCTIONS["arithmetic"]
    settings = DecodingSettings()
    key = prompt_hash(plain, "m", settings)
    assert len(key) == 64 and key == prompt_hash(build_prompt(examples[0], demos, None), "m", settings)
    assert key != prompt_hash(plain, "other", settings)
    assert key != prompt_hash(plain, "m", DecodingSettings(max_new_tokens=10))


def test_rag_demonstrations_show_facts_and_rationalizing_prompts_give_the_answer(tiny_examples):
    examples, demos = tiny_examples(3), _demos(tiny_examples)
    demos[0].meta["evidence"] = ["Apples grow on trees.", "Fish swim."]
    rag = build_prompt(examples[0], demos, ["Trees have roots."])
    assert rag[1]["content"].startswith("Facts:\n- Apples grow on trees.\n- Fish swim.\n\nQ: ")
    assert rag[3]["content"].startswith("Q: ")  # the others have none
    hinted = build_prompt(examples[0], demos, None, hint=True)
    assert hinted[0]["content"].endswith(HINT_INSTRUCTION)
    letter = "abcde"[examples[0].choices.index(examples[0].label)]
    assert hinted[-1]["content"].endswith(f"\n\nThe correct answer is ({letter}) {examples[0].label}.")
    demo = demos[0]
    assert hinted[1]["content"].endswith(
        f"The correct answer is ({'abcde'[demo.choices.index(demo.label)]}) {demo.label}.")
    assert hinted[2] == build_prompt(examples[0], demos, None)[2]  # the worked answer itself is unchanged
    yes_no = Example(id="y", input="Is ice cold?", label="yes", source="t")
    assert build_prompt(yes_no, [], None, hint=True)[-1]["content"].endswith("The correct answer is yes.")


def test_build_teacher_names_the_backends():
    with pytest.raises(ValueError, match="llama_cpp, openai, transformers"):
        build_teacher("palm")
    assert isinstance(build_teacher("openai", model="m", base_url="http://127.0.0.1:9"), OpenAITeacher)


# -- cache -----------------------------------------------------------------------------------------------

def test_cache_reopens_and_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = AnnotationCache(path)
    cache.put("k1", {"text": "one", "prompt_tokens": 3})
    cache.put("k2", {"text": "two ünïcode\u2028line"})
    with open(path, "ab") as handle:  # a run killed in the middle of writing its third line
        handle.write(b'{"key": "k3", "text": "thr')
    reopened = AnnotationCache(path)
    assert len(reopened) == 2 and reopened.truncated_bytes > 0
    assert reopened.get("k1")["text"] == "one" and reopened.get("k2")["text"] == "two ünïcode\u2028line"
    assert reopened.get("k3") is None
    reopened.put("k3", {"text": "three"})
    assert [json.loads(line)["key"] for line in path.read_text().split("\n") if line] == ["k1", "k2", "k3"]
    assert AnnotationCache(path).get("k3")["text"] == "three"
    # A complete-looking last line without its newline is torn too.
    with open(path, "ab") as handle:
        handle.write(b'{"key": "k4", "text": "four"}')
    assert AnnotationCache(path).get("k4") is None and path.read_bytes().endswith(b"three\"}\n")


def test_cache_refuses_corruption_before_the_last_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text('{"key": "a", "text": "x"}\nnot json\n{"key": "b", "text": "y"}\n')
    with pytest.raises(DataError, match="cache.jsonl:2"):
        AnnotationCache(path)


# -- annotate with a scripted teacher --------------------------------------------------------------------

class ScriptedTeacher(Teacher):
    def __init__(self, replies: dict[str, str], model_id: str = "scripted") -> None:
        self.model_id = model_id
        self.replies = replies
        self.asked: list[str] = []

    def complete(self, prompts, settings):
        out = []
        for messages in prompts:
            question = messages[-1]["content"]
            self.asked.append(question)
            text = next((r for q, r in self.replies.items() if q in question), "No idea.")
            out.append(Completion(text=text, prompt_tokens=len(question), completion_tokens=5, seconds=0.01))
        return out


def test_annotate_caches_resumes_and_applies_the_label_policy(tmp_path, tiny_examples):
    examples = tiny_examples(3)
    for example in examples:
        example.rationale = example.teacher_label = None
    teacher = ScriptedTeacher({"apples": "They grow on trees. So the answer is (a) trees.",
                               "kids": "Kids cry. So the answer is (c) cry."})
    cache = AnnotationCache(tmp_path / "c.jsonl")
    evidence = {"tiny-0": [{"id": "doc-7", "text": "Apples grow on apple trees."}]}
    out, stats = annotate(examples, teacher, DecodingSettings(), _demos(tiny_examples), evidence, cache,
                          batch_size=2, label_policy="keep", progress=False)
    assert (stats.queried, stats.from_cache, stats.unparsed, stats.completion_tokens) == (3, 0, 1, 15)
    assert [e.teacher_label for e in out] == ["trees", "cry", None]
    assert out[0].rationale == "They grow on trees." and out[2].rationale == "No idea."
    assert out[0].meta["evidence_ids"] == ["doc-7"] and out[1].meta["evidence_ids"] == []
    assert out[0].meta["teacher"] == "scripted" and out[0].meta["parse"] == "marker:letter_text"
    assert "Facts:\n- Apples grow on apple trees." in teacher.asked[0]
    assert examples[0].teacher_label is None  # copies; the inputs are untouched

    # Reopened: nothing is asked again; gold_if_wrong replaces the wrong and the missing labels.
    again = ScriptedTeacher({}, model_id="scripted")
    out2, stats2 = annotate(examples, again, DecodingSettings(), _demos(tiny_examples), evidence,
                            AnnotationCache(tmp_path / "c.jsonl"), label_policy="gold_if_wrong", progress=False)
    assert again.asked == [] and stats2.from_cache == 3 and stats2.corrected == 2
    assert [e.teacher_label for e in out2] == ["trees", "play", "3"]
    assert out2[1].meta["teacher_label_raw"] == "cry" and out2[1].meta["label_corrected"] is True
    assert out2[1].rationale == "Kids cry."

    # Another model or other settings are other keys.
    other = ScriptedTeacher({}, model_id="other")
    annotate(examples[:1], other, DecodingSettings(), [], None, cache, progress=False)
    assert len(other.asked) == 1
    with pytest.raises(ValueError, match="keep, gold_if_wrong"):
        annotate(examples, other, DecodingSettings(), [], None, cache, label_policy="teacher")


def test_annotate_publishes_its_progress_and_keeps_it_when_the_teacher_fails(tmp_path, tiny_examples):
    examples = tiny_examples(5)

    class FailsOnTheFifth(ScriptedTeacher):
        def complete(self, prompts, settings):
            if len(self.asked) >= 4:
                raise TeacherError("the server went away")
            return super().complete(prompts, settings)

    published = []
    teacher = FailsOnTheFifth({"apples": "So the answer is (a) trees."})
    with pytest.raises(TeacherError, match="4 new replies of 5"):
        annotate(examples, teacher, DecodingSettings(), [], None, AnnotationCache(tmp_path / "c.jsonl"),
                 batch_size=1, progress=False, publish=published.append, publish_every=2)
    assert [[e.id for e in done] for done in published] == [["tiny-0", "tiny-1"], ["tiny-0", "tiny-1", "tiny-2",
                                                                                  "tiny-3"]]
    assert published[0][0].teacher_label == "trees" and published[0][0].meta["prompt_hash"]


# -- the HTTP backend against small local servers ---------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    script: list = []  # (status, body) replies in turn; the last one repeats
    seen: list = []

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        type(self).seen.append((self.path, json.loads(self.rfile.read(length)), self.headers.get("Authorization")))
        status, body = self.script[min(len(self.seen) - 1, len(self.script) - 1)]
        body = body.replace("$AUTH", self.headers.get("Authorization") or "")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_server():
    servers = []

    def start(script):
        handler = type("Handler", (_Handler,), {"script": script, "seen": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


_OK = json.dumps({"choices": [{"message": {"role": "assistant", "content": "So the answer is (a) trees."}}],
                  "usage": {"prompt_tokens": 11, "completion_tokens": 7}})
_PROMPT = [[{"role": "user", "content": "Q: Where do apples grow?"}]]


def test_http_retries_a_server_error(scripted_server, monkeypatch):
    monkeypatch.setenv("RAGDISTILL_TEST_KEY", "sk-secret-123")
    url, handler = scripted_server([(500, '{"error": "busy"}'), (200, _OK)])
    teacher = OpenAITeacher("m", base_url=url, api_key_env="RAGDISTILL_TEST_KEY", max_retries=2, backoff=0.01)
    [completion] = teacher.complete(_PROMPT, DecodingSettings(max_new_tokens=5))
    assert (completion.text, completion.prompt_tokens, completion.completion_tokens) == (
        "So the answer is (a) trees.", 11, 7)
    assert len(handler.seen) == 2
    path, payload, auth = handler.seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-secret-123"
    assert payload["model"] == "m" and payload["max_tokens"] == 5 and payload["temperature"] == 0.0
    assert "sk-secret" not in repr(teacher) and "sk-secret" not in json.dumps(vars(teacher), default=str)


def test_http_gives_up_on_malformed_json(scripted_server):
    url, handler = scripted_server([(200, "{not json")])
    teacher = OpenAITeacher("m", base_url=url, max_retries=2, backoff=0.01)
    with pytest.raises(TeacherError, match=r"gave up after 3 attempts; last error: malformed reply"):
        teacher.complete(_PROMPT, DecodingSettings())
    assert len(handler.seen) == 3


class _CutOffHandler(http.server.BaseHTTPRequestHandler):
    """Sends the headers and the first 13 bytes of a 200 reply, then closes: a server dying mid-reply.
    The first ``cut`` requests are cut off; later ones get the whole reply."""

    cut = 0
    seen = 0

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen += 1
        body = _OK.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).seen <= type(self).cut:
            self.wfile.write(body[:13])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("cut, retries, succeeds", [(1, 2, True), (5, 2, False)])
def test_http_retries_a_reply_cut_off_mid_body(cut, retries, succeeds):
    handler = type("Handler", (_CutOffHandler,), {"cut": cut, "seen": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        teacher = OpenAITeacher("m", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
                                max_retries=retries, backoff=0.01)
        if succeeds:
            [completion] = teacher.complete(_PROMPT, DecodingSettings())
            assert completion.text == "So the answer is (a) trees." and handler.seen == cut + 1
        else:
            with pytest.raises(TeacherError, match=r"gave up after 3 attempts; last error: reply cut off"):
                teacher.complete(_PROMPT, DecodingSettings())
            assert handler.seen == retries + 1
    finally:
        server.shutdown()
        server.server_close()


def test_http_fails_fast_on_a_bad_key_without_showing_it(scripted_server, monkeypatch):
    monkeypatch.setenv("RAGDISTILL_TEST_KEY", "sk-secret-123")
    url, handler = scripted_server([(401, '{"error": "bad key $AUTH"}')])
    teacher = OpenAITeacher("m", base_url=url, api_key_env="RAGDISTILL_TEST_KEY", max_retries=3, backoff=0.01)
    with pytest.raises(TeacherError, match=r"HTTP 401.*RAGDISTILL_TEST_KEY") as caught:
        teacher.complete(_PROMPT, DecodingSettings())
    assert "sk-secret-123" not in str(caught.value) and len(handler.seen) == 1


# -- a real OpenAI-compatible server: llama.cpp serving SmolLM2 -------------------------------------------

def _start_llama_server(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    pytest.importorskip("uvicorn", reason="needs llama-cpp-python[server]")
    try:
        return start_llama_server(model, log, alias="smollm2", n_ctx=1024, threads=2, timeout=60)
    except TeacherError as err:
        pytest.fail(str(err))


def test_http_teacher_against_llama_cpp_server(tmp_path, tiny_examples, smollm2_gguf):
    process, base = _start_llama_server(smollm2_gguf, tmp_path / "server.log")
    try:
        teacher = OpenAITeacher("smollm2", base_url=base, concurrency=2, max_retries=1, backoff=0.1)
        cache = AnnotationCache(tmp_path / "c.jsonl")
        out, stats = annotate(tiny_examples(3), teacher, DecodingSettings(max_new_tokens=16), _demos(tiny_examples),
                              None, cache, batch_size=3, progress=False)
    finally:
        stop_server(process)
    assert stats.queried == 3 and stats.from_cache == 0 and stats.completion_tokens > 0
    assert len(cache) == 3 and len((tmp_path / "c.jsonl").read_text().splitlines()) == 3
    for example in out:
        meta = example.meta
        assert meta["teacher"] == "smollm2" and len(meta["prompt_hash"]) == 64
        assert meta["prompt_tokens"] > 50 and 0 < meta["completion_tokens"] <= 16 and meta["seconds"] > 0
        assert example.rationale is not None or example.teacher_label is not None
        assert meta["parse"]


class _KillingCache(AnnotationCache):
    """Kills the server (SIGKILL) right after the first reply is saved."""

    process: subprocess.Popen | None = None

    def put(self, key, record):
        super().put(key, record)
        if self.process is not None:
            stop_server(self.process)
            self.process = None


def test_http_teacher_server_killed_mid_run(tmp_path, tiny_examples, smollm2_gguf):
    process, base = _start_llama_server(smollm2_gguf, tmp_path / "server.log")
    examples, demos, settings = tiny_examples(5), _demos(tiny_examples), DecodingSettings(max_new_tokens=16)
    cache = _KillingCache(tmp_path / "c.jsonl")
    cache.process = process
    # A generous timeout: on a loaded machine the first reply may take long, and it must arrive before the kill
    # (a timeout before any reply left nothing saved once, in a CI run sharing the two cores with training).
    teacher = OpenAITeacher("smollm2", base_url=base, concurrency=2, max_retries=2, backoff=0.05, timeout=180)
    try:
        with pytest.raises(TeacherError, match=r"(?s)gave up after 3 attempts.*saved in .*c\.jsonl; run again"):
            annotate(examples, teacher, settings, demos, None, cache, batch_size=5, progress=False)
    finally:
        stop_server(process)
    saved = AnnotationCache(tmp_path / "c.jsonl")
    done = len(saved)
    assert 1 <= done < 5
    # Resuming asks only for what is missing.
    rest = ScriptedTeacher({}, model_id="smollm2")
    out, stats = annotate(examples, rest, settings, demos, None, saved, progress=False)
    assert stats.from_cache == done and stats.queried == len(rest.asked) == 5 - done
    assert len(out) == 5


# -- in-process backends ---------------------------------------------------------------------------------

def test_llama_cpp_in_process_with_and_without_prefix_reuse(tiny_examples, smollm2_gguf):
    from ragdistill.teachers.llama_cpp import LlamaCppTeacher

    prompts = [build_prompt(e, _demos(tiny_examples), None) for e in tiny_examples(2)]
    settings = DecodingSettings(max_new_tokens=12)
    with LlamaCppTeacher("smollm2-135m-instruct", n_ctx=1024, reuse_prefix=True) as teacher:
        assert teacher.model_id == "smollm2-135m-instruct"
        reused = teacher.complete(prompts, settings)
        teacher.reuse_prefix = False
        fresh = teacher.complete(prompts, settings)
    assert len(reused) == 2
    for completion in reused + fresh:
        assert completion.text.strip() and completion.prompt_tokens > 50
        assert 0 < completion.completion_tokens <= 12
    assert [c.prompt_tokens for c in reused] == [c.prompt_tokens for c in fresh]
    # The texts usually agree but need not: a reused prefix is evaluated in other batch sizes, and the CPU
    # kernels are not batch-invariant, so a near-tie in greedy decoding may flip (1 of 12 in the benchmark).


def test_llama_cpp_saves_each_reply_as_it_arrives(tmp_path, tiny_examples, smollm2_gguf):
    """A batch of 8 prompts reaches the cache one reply at a time, so a kill loses at most the reply in
    progress (the cache is watched while a real llama.cpp model answers)."""
    from ragdistill.teachers.llama_cpp import LlamaCppTeacher

    examples = tiny_examples(4)
    cache = AnnotationCache(tmp_path / "cache.jsonl")
    counts, finished, failures = set(), threading.Event(), []

    def run() -> None:
        try:
            with LlamaCppTeacher("smollm2-135m-instruct", n_ctx=1024) as teacher:
                annotate(examples, teacher, DecodingSettings(max_new_tokens=24), _demos(tiny_examples), None,
                         cache, batch_size=8, progress=False)
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)
        finally:
            finished.set()

    worker = threading.Thread(target=run)
    worker.start()
    while not finished.is_set():
        counts.add(cache.path.read_bytes().count(b"\n"))
        finished.wait(0.002)
    worker.join()
    assert not failures, failures
    counts.add(cache.path.read_bytes().count(b"\n"))
    assert max(counts) == 4
    # Saved in a batch, the cache would only ever hold 0 or 4 lines.
    assert counts & {1, 2, 3}, counts


_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def test_transformers_backend_batches_greedily(tiny_examples):
    from ragdistill import zoo
    from ragdistill.teachers.transformers_backend import TransformersTeacher

    teacher = TransformersTeacher(zoo.resolve_student("tiny-llama"), device="cpu", dtype="float32", batch_size=2,
                                  chat_template=_CHAT_TEMPLATE)
    prompts = [build_prompt(e, [], None) for e in tiny_examples(3)]
    settings = DecodingSettings(max_new_tokens=6, stop=("\n\nQ:", "user:"))
    batched = teacher.complete(prompts, settings)
    teacher.batch_size = 1
    single = teacher.complete(prompts, settings)
    assert len(batched) == 3
    assert all(0 < c.completion_tokens <= 6 and c.prompt_tokens > 10 for c in batched)
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in single]


def test_rationalizing_shows_the_training_questions_their_answer_and_marks_them(tmp_path, tiny_examples):
    examples = tiny_examples(2)
    teacher = ScriptedTeacher({"apples": "They grow on trees. So the answer is (a) trees."})
    out, _ = annotate(examples, teacher, DecodingSettings(), [], None, AnnotationCache(tmp_path / "c.jsonl"),
                      progress=False, hint_ids={examples[0].id})
    assert "The correct answer is (a) trees." in teacher.asked[0]
    assert "The correct answer is" not in teacher.asked[1]
    assert out[0].meta["rationalized"] is True and "rationalized" not in out[1].meta
    # A rationalized reply and a free one are different prompts: both stay in the cache.
    again = ScriptedTeacher({"apples": "x. So the answer is (a) trees."})
    annotate(examples[:1], again, DecodingSettings(), [], None, AnnotationCache(tmp_path / "c.jsonl"),
             progress=False)
    assert len(again.asked) == 1
