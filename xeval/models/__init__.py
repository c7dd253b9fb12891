"""Models: the local store (``xeval models``), offline multilingual-e5-small, tiny test model.

Other stages code against :func:`resolve_model`, :func:`load_model` and :func:`model_info`.
"""

from __future__ import annotations

from xeval.models.store import (
    CARD,
    KNOWN,
    InstallResult,
    ModelCheck,
    check_device,
    check_models,
    fingerprint_dir,
    install_model,
    installed_models,
    installed_path,
    load_model,
    model_info,
    models_dir,
    read_card,
    resolve_model,
)

__all__ = [
    "CARD",
    "KNOWN",
    "InstallResult",
    "ModelCheck",
    "check_device",
    "check_models",
    "fingerprint_dir",
    "install_model",
    "installed_models",
    "installed_path",
    "load_model",
    "model_info",
    "models_dir",
    "read_card",
    "resolve_model",
]
