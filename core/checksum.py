"""File checksums: every exported policy is verified against its recorded sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO


def stream_sha256(f: BinaryIO) -> str:
    """sha256 hex digest of an open binary stream (a local file, an fsspec object), read
    to its end in 1 MiB chunks."""
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a local file."""
    with open(path, "rb") as f:
        return stream_sha256(f)
