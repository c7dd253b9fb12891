"""Checkpoints of ``xeval finetune``: which one a ``--resume`` may trust.

A checkpoint ``checkpoint-N`` is *good* when every file the trainer restores is present and
intact: ``trainer_state.json`` (valid JSON, ``global_step`` N), the model weights (complete
safetensors files, shards and sub-modules included), every other JSON file, and ``optimizer.pt``, ``scheduler.pt``
and the RNG states (``rng_state.pth``, or ``rng_state_R.pth`` per process), whose zip
archives must pass their CRC checks. Without the RNG states a resumed run would not repeat
an uninterrupted one, so a checkpoint lacking them is not good either.

``--resume`` takes the newest good checkpoint; each newer damaged one is named in a warning
and moved aside to ``checkpoints/damaged-checkpoint-N`` so the trainer never reads it.
"""

from __future__ import annotations

import json
import re
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xeval.errors import XevalError

_NAME = re.compile(r"checkpoint-(\d+)")


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a resume starts from and the damaged ones it passed over."""

    path: Path
    step: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (folder, problem)


def _json_problem(path: Path) -> str | None:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"{path.name} unreadable ({type(e).__name__})"
    return None


def _safetensors_problem(path: Path) -> str | None:
    """A safetensors file is complete when its header parses and covers the file exactly."""
    try:
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > path.stat().st_size:
                return f"{path.name} truncated or damaged header"
            header: dict[str, Any] = json.loads(f.read(n))
        end = max(
            (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0
        )
        if 8 + n + end != path.stat().st_size:
            return f"{path.name} truncated or padded"
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError) as e:
        return f"{path.name} unreadable ({type(e).__name__})"
    return None


def _torch_zip_problem(path: Path) -> str | None:
    """``torch.save`` files are zip archives: check structure and every member's CRC."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as e:
        return f"{path.name} unreadable ({type(e).__name__})"
    return f"{path.name} damaged (bad CRC in {bad})" if bad else None


def checkpoint_problems(folder: Path, world_size: int = 1) -> list[str]:
    """What is missing or damaged in ``folder`` (empty: a good checkpoint)."""
    m = _NAME.fullmatch(folder.name)
    rng = (
        ["rng_state.pth"] if world_size <= 1 else [f"rng_state_{r}.pth" for r in range(world_size)]
    )
    needed = ["trainer_state.json", "optimizer.pt", "scheduler.pt", *rng]
    problems = [f"{name} missing" for name in needed if not (folder / name).is_file()]
    tensors = sorted(folder.rglob("*.safetensors"))
    if not tensors and not (folder / "pytorch_model.bin").is_file():
        problems.append("model weights missing")
    if problems:
        return problems
    for p in sorted(folder.rglob("*.json")):
        problems.append(_json_problem(p) or "")
    for p in tensors:
        problems.append(_safetensors_problem(p) or "")
    for name in ["optimizer.pt", "scheduler.pt", *rng]:
        problems.append(_torch_zip_problem(folder / name) or "")
    problems = [p for p in problems if p]
    if not problems:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        step = state.get("global_step") if isinstance(state, dict) else None
        if m is None or step != int(m[1]):
            problems.append(f"trainer_state.json says step {step!r}, the folder another")
    return problems


def _numbered(folder: Path) -> list[tuple[int, Path]]:
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _NAME.fullmatch(p.name)
            if m and p.is_dir():
                found.append((int(m[1]), p))
    return sorted(found, reverse=True)


def latest_checkpoint(folder: Path, world_size: int = 1) -> Path | None:
    """The newest good checkpoint-N folder in ``folder`` (None when there is none)."""
    return next((p for _, p in _numbered(folder) if not checkpoint_problems(p, world_size)), None)


def _quarantine(path: Path) -> Path:
    """Move a damaged checkpoint out of the trainer's sight; return where it went."""
    target = path.with_name(f"damaged-{path.name}")
    n = 1
    while target.exists():
        target = path.with_name(f"damaged-{path.name}.{n}")
        n += 1
    path.rename(target)
    return target


def find_resume_point(folder: Path, world_size: int = 1) -> ResumePoint:
    """The newest good checkpoint and the newer damaged ones it passes over (reads only).

    Raises :class:`XevalError` naming every checkpoint and its problems when none is good.
    """
    skipped: list[tuple[str, str]] = []
    for step, path in _numbered(folder):
        problems = checkpoint_problems(path, world_size)
        if not problems:
            return ResumePoint(path, step, skipped)
        skipped.append((path.name, "; ".join(problems)))
    if not skipped:
        raise XevalError("--resume: no checkpoint to resume from", file=folder)
    raise XevalError(
        "--resume: no intact checkpoint: " + " | ".join(f"{n}: {w}" for n, w in skipped),
        file=folder,
    )


def set_aside(folder: Path, point: ResumePoint) -> list[Path]:
    """Warn about each damaged checkpoint ``point`` passed over and move it aside."""
    moved = []
    for name, why in point.skipped:
        src = folder / name
        if not src.exists():
            continue
        dst = _quarantine(src)
        moved.append(dst)
        warnings.warn(
            f"--resume: {src} is damaged ({why}); resuming from {point.path.name} "
            f"(the damaged folder is now {dst.name})",
            stacklevel=2,
        )
    return moved


def check_resume_settings(config_path: Path, identity: dict[str, Any]) -> None:
    """Refuse a resume whose settings differ from the interrupted run's (or are unknown)."""
    if not config_path.is_file():
        raise XevalError(
            "--resume: the interrupted run's settings are missing, so they cannot be checked; "
            "start again with --overwrite",
            file=config_path,
        )
    try:
        saved = json.loads(config_path.read_text(encoding="utf-8"))["identity"]
        if not isinstance(saved, dict):
            raise TypeError("identity is not an object")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise XevalError(f"--resume: unreadable training settings ({e})", file=config_path) from e
    diff = {k: (saved.get(k), v) for k, v in identity.items() if saved.get(k) != v}
    if diff:
        raise XevalError(
            "--resume with different settings than the interrupted run: "
            + "; ".join(f"{k}: was {a!r}, now {b!r}" for k, (a, b) in diff.items()),
            file=config_path,
        )
