"""Model packs: which detector + recognizer + calibration the engine runs, by the name
``COMPAREFACES_MODEL`` gives.

The registry: ``default``, ``sface-fast``, ``sface-refined`` and ``sface-reid`` are embedded
(``embedded.py``); any other name is a folder of that name under ``COMPAREFACES_MODELS_DIR`` (``folder.py``).
"""

from __future__ import annotations

from typing import Protocol

from app.engine.packs.common import BUNDLED_CALIBRATIONS, DEFAULT_PACK, LoadedModels, ModelPackError
from app.engine.packs.embedded import FAST, FAST_PACK, FUSED_PACK, REFINED, REFINED_PACK, FusedPack, SFacePack
from app.engine.packs.folder import FolderPack, pack_names
from app.settings import Settings


class ModelPack(Protocol):
    @property
    def name(self) -> str: ...

    def load(self, settings: Settings) -> LoadedModels: ...


EMBEDDED_PACKS: tuple[ModelPack, ...] = (SFacePack(), FAST, REFINED, FusedPack())


def pack_for(name: str) -> ModelPack:
    """The pack serving ``name``: an embedded one, else the folder ``name`` under the models folder."""
    for pack in EMBEDDED_PACKS:
        if pack.name == name:
            return pack
    return FolderPack(name)


def load_models(settings: Settings) -> LoadedModels:
    """The detector and recognizer of the pack ``settings.model`` names."""
    return pack_for(settings.model).load(settings)


__all__ = [
    "BUNDLED_CALIBRATIONS",
    "DEFAULT_PACK",
    "EMBEDDED_PACKS",
    "FAST_PACK",
    "FUSED_PACK",
    "REFINED_PACK",
    "LoadedModels",
    "ModelPack",
    "ModelPackError",
    "load_models",
    "pack_for",
    "pack_names",
]
