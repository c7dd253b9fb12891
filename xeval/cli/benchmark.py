"""``xeval build-benchmark``, ``xeval export`` and ``xeval settings``."""

from __future__ import annotations

from pathlib import Path

import click

from xeval.benchmark.registry import BuilderSpec, builders, write_benchmark
from xeval.tables import KINDS


def _common_options(spec: BuilderSpec) -> list[click.Parameter]:
    """--out, --source, --overwrite, --sample-queries, --seed: every builder has them."""
    src_help = f"Where the raw files are: {spec.source_help or 'a folder or archive'}. " + (
        "Default: $XEVAL_SOURCES/"
        f"{spec.source.relpath}, then ../shared/data/{spec.source.relpath}, then the "
        f"xeval cache, then a pinned download of {spec.source.upstream}."
        if spec.source
        else "Required: this builder reads your own data."
    )
    return [
        click.Option(
            ["--out", "-o"],
            required=True,
            type=click.Path(path_type=Path),
            help="Benchmark directory to write (written atomically).",
        ),
        click.Option(
            ["--source", "-s"],
            type=click.Path(path_type=Path),
            required=spec.source is None,
            help=src_help,
        ),
        click.Option(["--overwrite"], is_flag=True, help="Replace --out if it exists."),
        click.Option(
            ["--sample-queries"],
            type=click.IntRange(min=1),
            default=None,
            help="Keep a seeded sample of N query units (all their languages) and the "
            "whole corpus: a quick look. Default: every query.",
        ),
        click.Option(
            ["--seed"], type=int, default=0, show_default=True, help="Seed for --sample-queries."
        ),
    ]


def _own_options(spec: BuilderSpec) -> list[click.Parameter]:
    """The builder's own options, from its registry entry."""
    params: list[click.Parameter] = []
    for opt in spec.options:
        if opt.name in ("seed", "out", "source", "overwrite", "sample_queries"):
            continue  # common options above; a builder's own ``seed`` receives --seed
        flag = "--" + opt.name.replace("_", "-")
        if opt.type is bool:
            params.append(
                click.Option(
                    [f"{flag}/--no-{opt.name.replace('_', '-')}"],
                    default=opt.default,
                    show_default=True,
                    help=opt.help,
                )
            )
        else:
            typ = click.Choice(list(opt.choices)) if opt.choices else opt.type
            params.append(
                click.Option(
                    [flag], type=typ, default=opt.default, show_default=True, help=opt.help
                )
            )
    return params


def _builder_command(spec: BuilderSpec) -> click.Command:
    """``xeval build-benchmark NAME``: its options, one library call, the summary."""

    def callback(
        out: Path,
        source: Path | None,
        overwrite: bool,
        sample_queries: int | None,
        seed: int,
        **opts,
    ):
        result = write_benchmark(
            spec.name,
            out,
            source,
            overwrite=overwrite,
            sample_queries=sample_queries,
            seed=seed,
            **opts,
        )
        click.echo(result.summary())

    return click.Command(
        spec.name,
        params=[*_common_options(spec), *_own_options(spec)],
        callback=callback,
        help=f"{spec.description}\n\nDomain: {spec.domain}. Licence: {spec.licence}.",
        short_help=spec.description,
    )


class BuilderGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(builders())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        spec = builders().get(name)
        return _builder_command(spec) if spec else None


@click.group("build-benchmark", cls=BuilderGroup)
def build_benchmark_cmd() -> None:
    """Turn a published data set or your own files into a benchmark directory.

    \b
    Writes DIR/{corpus,queries,qrels}.parquet, DIR/qrels.trec, DIR/benchmark.json
    (name, domain, languages, source checksum, licence, builder version, counts) and a
    benchmark card DIR/README.md. Nothing is left half-written: the directory appears
    only when the build succeeded.

    \b
    Examples:
      xeval build-benchmark xquad-r --out bench/xquad-r
      xeval build-benchmark mlqa-r --out bench/mlqa-r --source ~/data/lareqa/mlqa-r
      xeval build-benchmark beir --source my-beir-folder --out bench/mine
      xeval build-benchmark parallel-jsonl --source units.jsonl --out bench/mine

    Run `xeval build-benchmark NAME --help` for a builder's own options.
    """


@click.command("export")
@click.argument("benchmark", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out", "-o", required=True, type=click.Path(path_type=Path), help="Folder to write."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["beir", "trec", "both"]),
    default="both",
    show_default=True,
    help="beir: corpus.jsonl, queries.jsonl, qrels/test.tsv (with a lang field); "
    "trec: qrels.trec plus one qrels file per setting under settings/.",
)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def export_cmd(benchmark: Path, out: Path, fmt: str, overwrite: bool) -> None:
    """Write BENCHMARK back out as a BEIR folder and/or TREC qrels files."""
    from xeval.benchmark.export import export_benchmark

    path = export_benchmark(benchmark, out, fmt=fmt, overwrite=overwrite)
    click.echo(f"wrote {path}")


@click.command("settings")
@click.argument("benchmark", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KINDS),
    help="Only these kinds (repeatable). Default: all.",
)
def settings_cmd(benchmark: Path, kinds: tuple[str, ...]) -> None:
    """List BENCHMARK's retrieval settings with their query and qrel counts."""
    from xeval.benchmark.settings import list_settings

    click.echo(list_settings(benchmark, kinds or KINDS).summary())
