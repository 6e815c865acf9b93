"""One error type for everything a user can get wrong.

Every message answers three questions: what was wrong, where (file:line, a flag, a config key), and how to
fix it. The CLI prints ``str(err)`` as a single line and exits non-zero; tracebacks appear only with --debug.
"""

from __future__ import annotations


class WsteerError(Exception):
    """A user-facing error: ``where: what (fix: how)``.

    Args:
        what: what was wrong, in one sentence.
        where: the file:line, flag or key it was found at (optional).
        fix: what the user should do about it (optional).
    """

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self._format())

    def _format(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text += f" (fix: {self.fix})"
        return text


class ConfigError(WsteerError):
    """A config file or override that does not match its dataclass schema."""


class DataError(WsteerError):
    """A data file (JSONL, YAML, CSV) with a malformed record."""


class ModelLoadError(WsteerError):
    """A model, tokenizer or adapter that cannot be found or loaded safely."""
