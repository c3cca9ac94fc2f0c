"""A migration plan: the new text of each changed file, and what is left to people."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

NoteKind = Literal["configure", "by-hand", "changed"]


@dataclass(frozen=True)
class Note:
    """``configure``: set an environment variable, no code change; ``by-hand``: a change
    the codemod does not make; ``changed``: what a rewrite means for the deployment."""

    file: str
    line: int
    kind: NoteKind
    text: str


@dataclass(frozen=True)
class FileChange:
    path: Path
    rel: str
    before: str
    after: str

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{self.rel}",
                tofile=f"b/{self.rel}",
            )
        )


@dataclass
class Plan:
    changes: list[FileChange] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def apply(self) -> None:
        """Write every changed file (same encoding, same newlines as read)."""
        for change in self.changes:
            change.path.write_text(change.after, encoding="utf-8", newline="")
