"""``xeval run``: encode a benchmark with a model and write ranked runs for every setting."""

from __future__ import annotations

from pathlib import Path

import click


def _split(values: tuple[str, ...]) -> list[str] | None:
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


@click.command("run")
@click.option(
    "--model",
    "-m",
    required=True,
    help="Model name (e.g. multilingual-e5-small, see `xeval models list`), a local "
    "sentence-transformers folder, or a hub name (needs a network).",
)
@click.option(
    "--benchmark",
    "-b",
    required=True,
    type=click.Path(path_type=Path),
    help="Benchmark directory written by `xeval build-benchmark`.",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Run directory to write (atomically: it appears only when complete).",
)
@click.option(
    "--k",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Documents kept per query.",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "exact", "hnsw"]),
    default="auto",
    show_default=True,
    help="Search: exact (batched matmul), hnsw (usearch) or auto (HNSW for pools over "
    "--hnsw-threshold docs). Multi settings always rank exactly (exact language-bias "
    "ranks need every score).",
)
@click.option(
    "--hnsw-threshold",
    type=click.IntRange(min=0),
    default=50_000,
    show_default=True,
    help="Pool size above which --backend auto uses HNSW.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Encoding batch size.",
)
@click.option(
    "--query-prompt",
    default=None,
    help="Text put before every query. Default: the model's own query prompt "
    "(e5: 'query: '); '' for none.",
)
@click.option(
    "--passage-prompt",
    default=None,
    help="Text put before every passage. Default: the model's own passage prompt "
    "(e5: 'passage: '); '' for none.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["mono", "cross", "multi"]),
    help="Only these setting kinds (repeatable). Default: all.",
)
@click.option(
    "--languages",
    "languages",
    multiple=True,
    help="Only these languages (comma-separated or repeated). Default: all.",
)
@click.option(
    "--device", default=None, help="Torch device (cpu, cuda, cuda:1, mps). Default: auto."
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Embedding cache folder. Default: $XEVAL_CACHE/embeddings.",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@click.option("--seed", type=int, default=0, show_default=True, help="Torch seed (recorded).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def run_cmd(
    model: str, benchmark: Path, out: Path, k: int, backend: str, hnsw_threshold: int,
    batch_size: int, query_prompt: str | None, passage_prompt: str | None,
    kinds: tuple[str, ...], languages: tuple[str, ...], device: str | None,
    cache_dir: Path | None, no_cache: bool, seed: int, overwrite: bool, quiet: bool,
) -> None:  # fmt: skip
    """Encode BENCHMARK with MODEL once and write top-k runs for every setting.

    \b
    Writes OUT/run.json (model, benchmark fingerprint, prompts, backend, k, versions,
    command), OUT/runs/<setting>.parquet and .trec, and OUT/ranks/<multi-setting>.parquet
    (exact rank of every relevant document over the pooled corpus, for language bias).
    Ties: score descending, then doc_id descending. Embeddings are cached by model
    fingerprint + prompt + text, so a re-run re-encodes nothing.

    \b
    Example:
      xeval run --model multilingual-e5-small --benchmark bench/xquad-r --out runs/e5
    """
    from xeval.retrieval.run import run_benchmark
    from xeval.tables import read_json

    path = run_benchmark(
        model, benchmark, out, k=k, backend=backend, batch_size=batch_size,
        query_prompt=query_prompt, passage_prompt=passage_prompt,
        kinds=kinds or ("mono", "cross", "multi"), languages=_split(languages),
        device=device, cache_dir=cache_dir, use_cache=not no_cache, overwrite=overwrite,
        seed=seed, hnsw_threshold=hnsw_threshold, progress=not quiet,
    )  # fmt: skip
    meta = read_json(path / "run.json")
    enc = meta["encoding"]
    click.echo(
        f"wrote {path}: {len(meta['settings'])} settings, k={meta['k']}; encoded "
        f"{enc['queries']['encoded']} queries + {enc['passages']['encoded']} passages "
        f"({enc['queries']['cached'] + enc['passages']['cached']} from cache) in "
        f"{meta['timings_s']['encode']:.1f} s, searched in {meta['timings_s']['search']:.1f} s"
    )
