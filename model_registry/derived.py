"""Derived fields: model inputs computed from a record's own fields by a rule declared in the model's spec.

The rules travel in the version's feature contract and `FeatureContract.encode` applies them, so training and
serving derive with this one piece of code. A rule only fills a field the record lacks: a derived field the
record already carries is taken as sent. That is how a client applies a gap on a derived lever (sets
`tag_count` to the benchmark) and scores the listing again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model_registry.numbers import as_number, is_number

Rule = Literal["item_count", "ratio", "default"]
_SOURCES_NEEDED: dict[str, int] = {"item_count": 1, "ratio": 2, "default": 0}


class Derivation(BaseModel):
    """One derived field: `item_count` counts the non-empty items of a delimited text field, `ratio` divides
    the first source by the second, `default` stands in `value` for a field that is missing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="The API field it produces.")
    rule: Rule
    sources: tuple[str, ...] = Field(default=(), description="The API fields it reads (none for `default`).")
    separator: str = Field(default=",", description="item_count: what separates the items.")
    value: int | float | None = Field(default=None, description="default: the value a missing field means.")
    description: str = Field(min_length=10, description="What the field means, for the contract's readers.")

    @model_validator(mode="after")
    def _arguments_fit_the_rule(self) -> Derivation:
        if len(self.sources) != _SOURCES_NEEDED[self.rule]:
            raise ValueError(f"rule {self.rule!r} reads {_SOURCES_NEEDED[self.rule]} source field(s)")
        if (self.rule == "default") != (self.value is not None):
            raise ValueError("`value` is given with rule 'default', and only with it")
        return self

    def source_problems(self, record: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The (field, problem) pairs of sources of the wrong JSON type, without deriving anything."""
        problems = []
        for source in self.sources if self.rule != "default" else ():
            value = record.get(source)
            if self.rule == "item_count":
                if value is not None and not isinstance(value, str):
                    problems.append((source, "must be a string or null"))
                continue
            try:
                as_number(value)
            except ValueError as exc:
                problems.append((source, str(exc)))
        return problems

    def compute(self, record: Mapping[str, Any]) -> tuple[float | None, list[tuple[str, str]]]:
        """The derived value for a record lacking it, and the (field, problem) pairs of unusable sources."""
        if self.rule == "default":
            return self.value, []
        if self.rule == "item_count":
            (source,) = self.sources
            text = record.get(source)
            if text is None:
                return None, []
            if not isinstance(text, str):
                return None, [(source, "must be a string or null")]
            return sum(1 for item in text.split(self.separator) if item.strip()), []
        numbers: list[float | None] = []
        problems: list[tuple[str, str]] = []
        for source in self.sources:
            try:
                numbers.append(as_number(record.get(source)))
            except ValueError as exc:
                problems.append((source, str(exc)))
                numbers.append(None)
        numerator, denominator = numbers
        if problems or numerator is None or not denominator:
            return None, problems
        ratio = numerator / denominator
        return ratio if is_number(ratio) else None, []


def derive(
    record: Mapping[str, Any], derivations: Sequence[Derivation]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The record with every derived field it lacks filled in, and the problems found in its sources."""
    out = dict(record)
    problems: list[tuple[str, str]] = []
    for derivation in derivations:
        if out.get(derivation.field) is not None:
            # Not read then, but a source sent is still held to the JSON type the record schema gives it.
            problems.extend(derivation.source_problems(out))
            continue
        out[derivation.field], found = derivation.compute(out)
        problems.extend(found)
    return out, problems
