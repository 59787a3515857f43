"""The one error a reader of a version raises."""

from __future__ import annotations


class ArtifactError(Exception):
    """A version directory that cannot be served. The message names the file and the reason."""
