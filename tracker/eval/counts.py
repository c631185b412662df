"""A base for per-sequence metric counts that combine across sequences by adding field by field."""

from __future__ import annotations

from dataclasses import fields
from typing import TypeVar

CountsT = TypeVar("CountsT", bound="AdditiveCounts")


class AdditiveCounts:
    """Dataclass mixin: `a + b` adds every field, so sequences combine by summing their raw counts."""

    def __add__(self: CountsT, other: CountsT) -> CountsT:
        sums = {field.name: getattr(self, field.name) + getattr(other, field.name) for field in fields(self)}
        return type(self)(**sums)
