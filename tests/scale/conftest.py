from __future__ import annotations

import os

# The SDKs' credential chains must never reach for the ECS metadata service.
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
