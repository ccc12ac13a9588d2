"""Problems found in datasets, each with its location, and the error raised for unusable input."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from posekit.utils.errors import UserError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset, and where it is.

    `code` is a stable short name (e.g. "kpt-length") that tests and tools can match on;
    `message` says what is wrong in words.
    """

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    image_id: Any = None
    annotation_id: Any = None
    field: str | None = None

    @property
    def location(self) -> str:
        parts = []
        if self.file is not None:
            loc = str(self.file)
            if self.line is not None:
                loc += f":{self.line}"
                if self.column is not None:
                    loc += f":{self.column}"
            parts.append(loc)
        if self.image_id is not None:
            parts.append(f"image {self.image_id}")
        if self.annotation_id is not None:
            parts.append(f"annotation {self.annotation_id}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        loc = self.location
        return f"{loc}: {self.message} [{self.code}]" if loc else f"{self.message} [{self.code}]"


@dataclass
class LoadReport:
    """What a loader found: every problem, and how many entries it skipped and why.

    A loader never drops an entry without counting it here under the code of the problem.
    """

    problems: list[Problem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    #: how a convention the file bends was read (a 0-based skeleton, inferred keypoint
    #: names, fields left out): facts worth knowing that are not errors
    notes: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem, *, skipped: str | None = None) -> None:
        """Record a problem; `skipped` names what was dropped because of it ("annotation"...)."""
        self.problems.append(problem)
        if skipped is not None:
            self.skipped[f"{skipped} ({problem.code})"] += 1

    def note(self, note: Problem) -> None:
        """Record how something unusual was read (not a problem: nothing was lost)."""
        self.notes.append(note)

    def extend(self, other: LoadReport) -> None:
        self.problems.extend(other.problems)
        self.skipped.update(other.skipped)
        self.notes.extend(other.notes)

    @property
    def ok(self) -> bool:
        return not self.problems

    def codes(self) -> Counter[str]:
        return Counter(p.code for p in self.problems)

    def summary(self) -> str:
        """ "no problems", or the problem count, then what was skipped: a skip a reader made
        by design (predicted-only frames, say) is said even when nothing is a problem."""
        if self.ok and not self.skipped:
            return "no problems"
        text = f"{len(self.problems)} problem(s)" if self.problems else "no problems"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{n} {what}" for what, n in self.skipped.items())
        return text


class DatasetError(UserError):
    """Input that cannot be used at all (unreadable file, broken JSON, unknown format), or a
    strict load that found problems. `problems` holds every problem with its location."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)
