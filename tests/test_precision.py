"""The shared precision choice (``--dtype auto|fp32|bf16``)."""

from __future__ import annotations

import pytest
import torch

from xeval import precision
from xeval.errors import XevalError
from xeval.precision import default_threads, physical_cores, resolve_dtype


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    """Point the module at a fake /proc/cpuinfo with the given flags."""

    def make(flags: str, cores: int = 2) -> None:
        blocks = [
            f"processor\t: {i}\nphysical id\t: 0\ncore id\t\t: {i // 2}\nflags\t\t: {flags}\n"
            for i in range(cores * 2)
        ]
        path = tmp_path / "cpuinfo"
        path.write_text("\n".join(blocks) + "\n")
        monkeypatch.setattr(precision, "_CPUINFO", path)
        precision.cpu_flags.cache_clear()

    yield make
    precision.cpu_flags.cache_clear()


def test_auto_picks_bf16_on_a_cpu_with_avx512_bf16(cpuinfo):
    cpuinfo("fpu sse avx512f avx512_bf16")
    p = resolve_dtype("auto", "cpu")
    assert p.name == "bf16" and p.torch_dtype is torch.bfloat16
    assert "avx512_bf16" in p.reason


def test_auto_picks_fp32_without_native_bf16(cpuinfo):
    cpuinfo("fpu sse avx2 avx512f")
    p = resolve_dtype("auto", "cpu")
    assert p.name == "fp32" and p.torch_dtype is torch.float32
    assert "lacks" in p.reason


def test_auto_respects_a_veto_and_explicit_choices_win(cpuinfo):
    cpuinfo("amx_bf16")
    assert resolve_dtype("auto", "cpu", avoid_bf16="moves MRR").name == "fp32"
    assert resolve_dtype("bf16", "cpu", avoid_bf16="moves MRR").name == "bf16"
    assert resolve_dtype("FP32", "cpu").name == "fp32"


def test_explicit_bf16_without_native_support_says_so(cpuinfo):
    cpuinfo("avx2")
    p = resolve_dtype("bf16", "cpu")
    assert p.is_bf16 and "emulated" in p.reason


def test_unknown_dtype_is_an_xeval_error():
    with pytest.raises(XevalError, match="--dtype"):
        resolve_dtype("fp16", "cpu")


def test_unknown_devices_get_fp32():
    p = resolve_dtype("auto", "mps")
    assert p.name == "fp32" and p.device_type == "mps"


def test_autocast_runs_matmuls_in_bf16_only_when_chosen():
    x = torch.randn(4, 8)
    lin = torch.nn.Linear(8, 3)
    with resolve_dtype("bf16", "cpu").autocast():
        assert lin(x).dtype is torch.bfloat16
    with resolve_dtype("fp32", "cpu").autocast():
        assert lin(x).dtype is torch.float32


def test_physical_cores_counts_cores_not_threads(cpuinfo, monkeypatch):
    cpuinfo("avx2", cores=2)  # 4 logical processors on 2 cores
    monkeypatch.setattr(precision.os, "sched_getaffinity", lambda _: set(range(4)), raising=False)
    assert physical_cores() == 2


def test_to_dict_is_plain_provenance():
    d = resolve_dtype("fp32", "cpu").to_dict()
    assert d == {"name": "fp32", "requested": "fp32", "device": "cpu", "reason": "requested"}


def test_default_threads_follow_omp_num_threads_else_cores(cpuinfo, monkeypatch):
    cpuinfo("avx2", cores=4)
    monkeypatch.setattr(precision.os, "sched_getaffinity", lambda _: set(range(8)), raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == 4 and default_threads(processes=2) == 2
