"""fnn's exceptions: every bad input raises one of these before anything is traced."""

__all__ = ["CheckpointError", "CheckpointNotFoundError", "FnnError", "FnnTypeError", "FnnValueError"]


class FnnError(Exception):
    """Base class of every error fnn raises on purpose."""


class FnnValueError(FnnError, ValueError):
    """An argument has the right type but a wrong value, shape or content."""


class FnnTypeError(FnnError, TypeError):
    """An argument has the wrong type or dtype."""


class CheckpointError(FnnValueError):
    """A checkpoint file is corrupt, truncated, of another format or does not match `like`."""


class CheckpointNotFoundError(FnnError, FileNotFoundError):
    """A checkpoint path does not exist."""
