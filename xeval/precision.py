"""One precision choice for encoding and training: ``--dtype auto|fp32|bf16``.

``auto`` picks bf16 where the device computes it natively and fp32 elsewhere:

- CPU: bf16 when the processor has AVX512-BF16 or AMX-BF16 (the ``avx512_bf16`` /
  ``amx_bf16`` flags of ``/proc/cpuinfo``); elsewhere oneDNN only emulates bf16 and fp32 is
  as fast or faster;
- CUDA: ``torch.cuda.is_bf16_supported()``;
- any other device (MPS, ...): fp32.

bf16 means mixed precision: weights (and optimizer states) stay fp32 and matrix products run
in bf16 under :func:`torch.autocast`; use :meth:`Precision.autocast` around the forward pass.

>>> p = resolve_dtype("fp32", "cpu")
>>> (p.name, p.requested, p.device_type)
('fp32', 'fp32', 'cpu')
>>> with p.autocast():
...     pass
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from xeval.errors import XevalError

DTYPES = ("auto", "fp32", "bf16")
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Precision:
    """The resolved choice: ``name`` is ``"fp32"`` or ``"bf16"``; ``reason`` says why."""

    name: str
    requested: str
    device: str
    reason: str

    @property
    def device_type(self) -> str:
        """``"cpu"``, ``"cuda"``, ... (the device without its index)."""
        return self.device.split(":", 1)[0]

    @property
    def is_bf16(self) -> bool:
        return self.name == "bf16"

    @property
    def torch_dtype(self) -> Any:
        """The compute dtype (``torch.bfloat16`` or ``torch.float32``)."""
        import torch

        return torch.bfloat16 if self.is_bf16 else torch.float32

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """``torch.autocast(device, bfloat16)`` for bf16; does nothing for fp32."""
        if not self.is_bf16:
            yield
            return
        import torch

        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            yield

    def to_dict(self) -> dict[str, str]:
        """For provenance: name, requested, device, reason."""
        return asdict(self)

    def summary(self) -> str:
        return f"{self.name} on {self.device} ({self.reason})"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        text = _CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bf16(device: str) -> tuple[bool, str]:
    """Whether ``device`` computes bf16 natively, and the evidence."""
    kind = device.split(":", 1)[0]
    if kind == "cpu":
        flags = cpu_flags()
        found = [f for f in _CPU_BF16_FLAGS if f in flags]
        if found:
            return True, f"CPU has {'+'.join(found)}"
        return False, "CPU lacks avx512_bf16/amx_bf16" if flags else "CPU flags unknown"
    if kind == "cuda":
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return True, "torch.cuda.is_bf16_supported()"
        return False, "CUDA device without native bf16"
    return False, f"no native bf16 check for {kind!r}"


def default_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(
    requested: str = "auto", device: str | None = None, *, avoid_bf16: str | None = None
) -> Precision:
    """Resolve ``--dtype`` for ``device`` (default: :func:`default_device`).

    ``avoid_bf16`` (a reason) makes ``auto`` choose fp32, e.g. for a benchmark where bf16
    is known to move the metrics; an explicit ``bf16`` is still honoured.
    """
    req = (requested or "auto").strip().lower()
    if req not in DTYPES:
        raise XevalError(f"--dtype must be one of {', '.join(DTYPES)}, got {requested!r}")
    dev = device or default_device()
    if req == "fp32":
        return Precision("fp32", req, dev, "requested")
    native, why = native_bf16(dev)
    if req == "bf16":
        note = "requested" if native else f"requested; emulated, may be slow ({why})"
        return Precision("bf16", req, dev, note)
    if avoid_bf16:
        return Precision("fp32", req, dev, f"auto: {avoid_bf16}")
    return Precision("bf16" if native else "fp32", req, dev, f"auto: {why}")


def physical_cores() -> int:
    """Physical CPU cores available to this process (hyper-threads not counted)."""
    avail = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    avail = avail or os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    phys = core = ""
    try:
        lines = _CPUINFO.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return avail
    for line in [*lines, ""]:
        key, _, value = (s.strip() for s in line.partition(":"))
        if key == "physical id":
            phys = value
        elif key == "core id":
            core = value
        elif not key and core:
            cores.add((phys, core))
            phys = core = ""
    return max(1, min(avail, len(cores) or avail))


def default_threads(processes: int = 1) -> int:
    """``$OMP_NUM_THREADS`` when set (a shared machine's choice), else physical cores divided
    among ``processes`` (at least 1)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, physical_cores() // max(1, processes))


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (default: :func:`default_threads`); return the number."""
    import torch

    n = threads or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
