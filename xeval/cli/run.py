"""``xeval run``: encode a benchmark with a model and write ranked runs for every setting."""

from __future__ import annotations

from pathlib import Path

import click


def _split(values: tuple[str, ...]) -> tuple[str, ...] | None:
    out = tuple(v.strip() for item in values for v in item.split(",") if v.strip())
    return out or None


@click.command("run")
@click.option(
    "--model",
    "-m",
    required=True,
    help="Model name (e.g. multilingual-e5-small, see `xeval models list`), a local "
    "sentence-transformers folder, a hub name (needs a network), or bm25 (lexical "
    "baseline; bm25:k1=1.2,b=0.75 sets its parameters).",
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
    help="Search: exact (batched matmul), hnsw (usearch: f32, connectivity 32, a search "
    "beam of 512 / 1,024 / 2,048 for pools up to 100k / 400k / more docs, recall@100 >= 0.99 "
    "as measured; the index is stored and reused) or auto (HNSW for pools over "
    "--hnsw-threshold docs). Multi settings always rank exactly (exact language-bias "
    "ranks need every score).",
)
@click.option(
    "--hnsw-threshold",
    type=click.IntRange(min=0),
    default=1_000_000,  # = xeval.retrieval.search.HNSW_THRESHOLD (a test checks)
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
@click.option(
    "--dtype",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default="auto",
    show_default=True,
    help="Encoding precision: bf16 runs the model under autocast (vectors stay float32); "
    "auto = bf16 where the CPU/GPU computes it natively, else fp32. Recorded in run.json "
    "and part of the embedding-cache key.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Torch threads for encoding. Default: the physical cores.",
)
@click.option(
    "--trec",
    type=click.Choice(["none", "gz", "plain"]),
    default="none",
    flag_value="gz",
    is_flag=False,
    show_default=True,
    help="Also write runs/<setting>.trec.gz (--trec or --trec gz) or plain .trec text "
    "(--trec plain). Parquet runs are always written.",
)
@click.option(
    "--label",
    default=None,
    help="The run's system name (run.json, TREC tag, compare tables). Default: model label.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Torch seed (recorded).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option(
    "--quiet",
    "-q",
    "--no-progress",
    is_flag=True,
    help="No progress bars, and no third-party bars, logging or warnings.",
)
def run_cmd(model: str, benchmark: Path, out: Path, quiet: bool, **options: object) -> None:
    """Encode BENCHMARK with MODEL once and write top-k runs for every setting.

    \b
    Writes OUT/run.json (label, model, benchmark fingerprint, prompts, precision, threads,
    truncation counts, backend, k, versions, command), OUT/runs/<setting>.parquet (and
    .trec.gz with --trec), and OUT/ranks/<setting>.parquet (exact rank of every relevant
    document over the setting's whole corpus). Ties: score descending, then doc_id
    descending. Embeddings are cached by model fingerprint (from the weight files) +
    prompt + precision + text, so a re-run re-encodes nothing.

    \b
    Example:
      xeval run --model multilingual-e5-small --benchmark bench/xquad-r --out runs/e5
    """
    from xeval.retrieval.run import RunConfig, run_benchmark

    config = RunConfig(
        kinds=tuple(options.pop("kinds")) or ("mono", "cross", "multi"),  # type: ignore[arg-type]
        languages=_split(options.pop("languages")),  # type: ignore[arg-type]
        use_cache=not options.pop("no_cache"),
        progress=not quiet,
        **options,  # type: ignore[arg-type]
    )
    click.echo(run_benchmark(model, benchmark, out, config).summary())
