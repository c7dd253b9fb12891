"""The ``xeval`` command: a thin Click layer over the library API.

Subcommands live one per module in this package and are imported only when used, so
``xeval --help`` stays fast and a broken optional stage never blocks the others.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from xeval import __version__

# command name -> "module:attribute"; adding a command is one line here plus its module
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "xeval.cli.demo:demo_cmd",
        "Build XQuAD-R, evaluate multilingual-e5-small zero-shot, print the table.",
    ),
    "build-benchmark": (
        "xeval.cli.benchmark:build_benchmark_cmd",
        "Turn a published data set or your own files into a benchmark directory.",
    ),
    "export": (
        "xeval.cli.benchmark:export_cmd",
        "Write a benchmark as a BEIR folder and TREC files.",
    ),
    "settings": (
        "xeval.cli.benchmark:settings_cmd",
        "List the mono / cross / multi settings of a benchmark.",
    ),
    "models": (
        "xeval.cli.models:models_cmd",
        "Install, list and locate offline models (multilingual-e5-small, tiny test model).",
    ),
    "run": (
        "xeval.cli.run:run_cmd",
        "Encode a benchmark with a model and write ranked runs for every setting.",
    ),
    "evaluate": (
        "xeval.cli.evaluate:evaluate_cmd",
        "Score a run directory: MRR, Recall@k, nDCG, mAP, language bias.",
    ),
    "fuse": (
        "xeval.cli.fuse:fuse_cmd",
        "Fuse runs of one benchmark (RRF, CombSUM, ...) into a new run.",
    ),
    "compare": (
        "xeval.cli.compare:compare_cmd",
        "Significance tests between evaluated runs, with corrected p-values and reports.",
    ),
    "pairs": (
        "xeval.cli.pairs:pairs_cmd",
        "Build (query, passage) training pairs from parallel data.",
    ),
    "finetune": (
        "xeval.cli.finetune:finetune_cmd",
        "Hybrid-batch (X-X / X-Y / hybrid) contrastive fine-tuning.",
    ),
    "study": ("xeval.cli.study:study_cmd", "Run, resume and report a study plan (TOML)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, short = COMMANDS[name]
        mod_name, attr = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("xeval"):
                return click.Command(
                    name, help=f"{short} (not available in this build)", short_help=short
                )
            raise
        return getattr(mod, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # short help from the table: no imports just to print --help
        with formatter.section("Commands"):
            formatter.write_dl([(n, s) for n, (_, s) in COMMANDS.items()])

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        from xeval.errors import XevalError, describe_os_error

        try:
            return super().invoke(ctx)
        except (XevalError, OSError) as exc:
            if os.environ.get("XEVAL_DEBUG"):
                raise
            msg = str(exc) if isinstance(exc, XevalError) else describe_os_error(exc)
            click.secho(f"error: {msg}", fg="red", err=True)
            sys.exit(2)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="xeval")
def main() -> None:
    """xeval: does a multilingual retriever really work across languages?

    Build a benchmark, run a model on every monolingual (X->X), cross-lingual (X->Y) and
    multilingual (X->all) setting, evaluate it with MRR, Recall@k, mAP and language bias,
    fine-tune with hybrid batches, and compare models with corrected significance tests.

    \b
    Typical session:
      xeval build-benchmark xquad-r --out bench/xquad-r
      xeval models install multilingual-e5-small
      xeval run --model multilingual-e5-small --benchmark bench/xquad-r --out runs/e5
      xeval evaluate runs/e5
      xeval compare runs/ --test paired-t

    Set XEVAL_DEBUG=1 to see tracebacks.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
