"""``xeval pairs``: one subcommand per registered pair source (see :mod:`xeval.training.pairs`)."""

from __future__ import annotations

from pathlib import Path

import click

from xeval.training.pairs import PairSourceSpec, PairsRequest, make_pairs, pair_sources


def _common_options(spec: PairSourceSpec) -> list[click.Parameter]:
    src_help = f"Raw data: {spec.source_help or 'a folder or file'}. " + (
        f"Default: $XEVAL_SOURCES/{spec.source.relpath}, then ../shared/data/"
        f"{spec.source.relpath}, then the xeval cache."
        if spec.source
        else "Required: this source reads your own file."
    )
    return [
        click.Option(
            ["--out", "-o"],
            required=True,
            type=click.Path(path_type=Path),
            help="Pairs file to write (Parquet; a .json sidecar holds counts and provenance).",
        ),
        click.Option(
            ["--source", "-s"],
            type=click.Path(path_type=Path),
            required=spec.source is None,
            help=src_help,
        ),
        click.Option(
            ["--max-units"],
            type=click.IntRange(min=1),
            default=None,
            help="Keep a sample of N units (all their language pairs).",
        ),
        click.Option(["--overwrite"], is_flag=True, help="Replace --out if it exists."),
    ]


def _pairs_command(spec: PairSourceSpec) -> click.Command:
    params = _common_options(spec) + [
        click.Option(
            ["--" + o.name.replace("_", "-")],
            type=o.type,
            default=o.default,
            show_default=o.default is not None,
            help=o.help,
        )
        for o in spec.options
    ]

    def callback(
        out: Path, source: Path | None, max_units: int | None, overwrite: bool, **options
    ) -> None:
        req = PairsRequest(spec.name, out, source, max_units, options, overwrite)
        click.echo(make_pairs(req).summary())

    return click.Command(
        spec.name,
        params=params,
        callback=callback,
        help=f"{spec.description}.\n\nOne row per unit and (query language, passage "
        "language), X-X included: query, passage, query_lang, passage_lang, unit_id, source.",
        short_help=spec.description,
    )


class PairSourceGroup(click.Group):
    """Subcommands generated from the pair-source registry."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(pair_sources())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        spec = pair_sources().get(name)
        return _pairs_command(spec) if spec else None


@click.group("pairs", cls=PairSourceGroup)
def pairs_cmd() -> None:
    """Build (query, passage) training pairs from parallel data.

    Only query and passage reach the loss; the language columns drive the X-X / X-Y
    batch sampler.

    \b
    Examples:
      xeval pairs lareqa-mlqa-r --out pairs/mlqa.parquet
      xeval pairs parallel-jsonl --source units.jsonl --out pairs/mine.parquet
      xeval pairs python-docs --languages en,fr,ja --max-units 5000 --out pairs/py.parquet

    Run `xeval pairs NAME --help` for a source's own options.
    """
