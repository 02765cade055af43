"""Choice likelihoods (with the shared KV cache) and batched greedy generation."""

from __future__ import annotations

import pytest
import torch

from ragdistill.evaluation.scoring import choice_logprobs, choose_labels, generate_labels
from ragdistill.students import TaskFormatter
from ragdistill.students.models import pick_device

CHOICES = ["trees", "the kids and the apples", "7", "points", "where the answer is so"]


def _reference_causal(student, prompt: list[int], target: list[int]) -> float:
    """Run prompt + target as one sequence and average the log-probabilities of the target tokens."""
    ids = torch.tensor([prompt + target])
    with torch.no_grad():
        logits = student.model(input_ids=ids).logits[0]
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    start = len(prompt)
    values = [logprobs[start + i - 1, token] for i, token in enumerate(target)]
    return float(torch.stack(values).mean())


def _reference_seq2seq(student, prompt: list[int], target: list[int]) -> float:
    with torch.no_grad():
        out = student.model(input_ids=torch.tensor([prompt]), labels=torch.tensor([target]))
    logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)
    mean = float(logprobs[torch.arange(len(target)), torch.tensor(target)].mean())
    # The model's own loss is the mean negative log-likelihood of the same tokens.
    assert mean == pytest.approx(-float(out.loss), abs=1e-5)
    return mean


@pytest.mark.parametrize("name", ["sharp_llama", "sharp_t5"])
def test_choice_logprobs_match_reference(request, tiny_examples, name):
    student = request.getfixturevalue(name)
    student.model.eval()
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder)
    reference = _reference_seq2seq if student.is_encoder_decoder else _reference_causal
    for example in tiny_examples(2):
        prompt = formatter.prompt_ids("label", example.input)
        targets = [formatter.target_ids(c) for c in CHOICES]
        assert len({len(t) for t in targets}) > 2  # padding between targets is exercised
        scores = choice_logprobs(student, prompt, targets)
        expected = [reference(student, prompt, t) for t in targets]
        assert scores == pytest.approx(expected, abs=1e-4)
        assert len(set(round(s, 3) for s in scores)) > 1


def test_choice_logprobs_single_target(sharp_llama):
    formatter = TaskFormatter(sharp_llama.tokenizer, False)
    prompt = formatter.prompt_ids("label", "Where do apples grow?")
    target = formatter.target_ids("trees")
    [score] = choice_logprobs(sharp_llama, prompt, [target])
    assert score == pytest.approx(_reference_causal(sharp_llama, prompt, target), abs=1e-4)
    assert score < 0


@pytest.mark.parametrize("name", ["sharp_llama", "sharp_t5"])
def test_choose_labels_returns_best_choice(request, tiny_examples, name):
    student = request.getfixturevalue(name)
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder)
    examples = tiny_examples(3)
    predictions, scores = choose_labels(student, examples, formatter)
    assert len(predictions) == len(scores) == 3
    for example, prediction, values in zip(examples, predictions, scores):
        assert prediction in example.choices
        assert len(values) == len(example.choices)
        assert prediction == example.choices[values.index(max(values))]


def test_choose_labels_needs_choices(sharp_llama, tiny_examples):
    example = tiny_examples(1)[0]
    example.choices = None
    with pytest.raises(ValueError, match="needs choices"):
        choose_labels(sharp_llama, [example], TaskFormatter(sharp_llama.tokenizer, False))


@pytest.mark.parametrize("name", ["sharp_llama", "sharp_t5"])
def test_generate_labels_batching_does_not_change_results(request, tiny_examples, name):
    student = request.getfixturevalue(name)
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder)
    examples = tiny_examples(5)
    examples[1].input = "How many?"  # very different lengths: a lot of padding in the batch
    examples[3].input = "the answer is so because of what where when how many which " * 3
    alone = generate_labels(student, examples, formatter, max_new_tokens=8, batch_size=1)
    batched = generate_labels(student, examples, formatter, max_new_tokens=8, batch_size=4)
    assert all(isinstance(text, str) for text in alone)
    assert all("\n" not in text for text in alone)
    assert len(set(alone)) == len(alone)  # the outputs depend on the prompt
    assert batched == alone
    # The results come back in the order of the examples, not the length-sorted order.
    reordered = generate_labels(student, examples[::-1], formatter, max_new_tokens=8, batch_size=4)
    assert reordered == alone[::-1]


def test_pick_device_takes_what_is_asked_and_auto_follows_torch():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_names_the_setting():
    with pytest.raises(ValueError, match=r"eval\.device = 'cuda:1'.*no CUDA device"):
        pick_device("cuda:1", "params.yaml: eval.device")


# CI has no GPU: this runs where torch sees one (benchmarks/cuda_check.py documents the device check).
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["sharp_llama", "sharp_t5"])
def test_answers_on_the_gpu_match_the_cpu(request, tiny_examples, name):
    import copy

    student = request.getfixturevalue(name)
    on_gpu = copy.copy(student)
    on_gpu.model = copy.deepcopy(student.model).to(pick_device("cuda"))
    formatter = TaskFormatter(student.tokenizer, student.is_encoder_decoder)
    examples = tiny_examples(5)
    cpu_labels, cpu_scores = choose_labels(student, examples, formatter)
    gpu_labels, gpu_scores = choose_labels(on_gpu, examples, formatter)
    assert gpu_labels == cpu_labels
    for cpu_row, gpu_row in zip(cpu_scores, gpu_scores):
        assert gpu_row == pytest.approx(cpu_row, rel=1e-4)  # these sharpened models score about -45
    assert generate_labels(on_gpu, examples, formatter, max_new_tokens=8, batch_size=4) == \
        generate_labels(student, examples, formatter, max_new_tokens=8, batch_size=4)
