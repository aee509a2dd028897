"""comparefaces: a self-hosted, wire-compatible Alibaba Cloud Cloudauth CompareFaces server.

Embedding the engine in your own code::

    from app import Settings, load_engine, ImageType
    engine = load_engine(Settings())
    a = engine.embed(open("a.jpg", "rb").read(), ImageType.FACE_PIC)
    b = engine.embed(open("b.jpg", "rb").read(), ImageType.ID_PIC)
    result = engine.compare(a, b)  # result.score, result.thresholds
"""

from app.engine.build import load_engine
from app.engine.engine import FaceEngine
from app.engine.types import Comparison, Face, ImageType
from app.settings import Settings

__all__ = ["Comparison", "Face", "FaceEngine", "ImageType", "Settings", "load_engine"]
