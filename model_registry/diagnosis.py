"""Effect diagnosis: where a listing falls short of the top performers of its segment, and what closing each
gap alone is worth to its effect probability.

Training fits a `Diagnoser` on the non-holdout listings (segments, their benchmarks and score distributions),
stores it with the model version and measures it on the holdout; serving rebuilds it from the version's
metadata. Both run this code, so what training measured is what the route answers.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from model_registry.contract import FeatureContract
from model_registry.numbers import is_number

ALL_LISTINGS = "all listings"
Predict = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float64]]
Number = int | float


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lever(_Frozen):
    """A field the seller controls. Direction `more`: a gap only where the listing has less than the benchmark
    (countries shipped to, tags); `model`: any other value may be a gap (price), and re-scoring the listing at
    the benchmark decides whether it helps."""

    field: str
    direction: Literal["more", "model"]
    label: str = Field(
        description="The lever in words, for a listing that does not give it: 'Countries shipped to'."
    )
    message: str = Field(description="What a rep reads out; {value} and {benchmark} are filled in.")

    def falls_short(self, value: Any, benchmark: Number) -> bool:
        if not is_number(value):
            return True  # not given: the benchmark may help, re-scoring decides
        return bool(value < benchmark) if self.direction == "more" else bool(value != benchmark)

    def say(self, value: Any, benchmark: Number) -> str:
        if not is_number(value):
            return f"{self.label}: not given; top sellers in this segment: {_fmt(benchmark)}"
        return self.message.format(value=_fmt(value), benchmark=_fmt(benchmark))


class Category(_Frozen):
    name: str
    keywords: tuple[str, ...] = Field(
        min_length=1, description="Lower-case words; any one in the tags matches."
    )

    @field_validator("keywords")
    @classmethod
    def _single_words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [k for k in value if not re.fullmatch(r"[a-z0-9]+", k)]
        if bad:
            raise ValueError(f"keywords are single lower-case words: {bad}")
        return value


class SegmentRule(_Frozen):
    """Peer groups, narrowest first: the listing's category (the first whose keywords match a word of its tags,
    else `other_category`) in its price band; the category alone; every listing. A listing is compared with the
    narrowest of its groups that has at least `min_listings` listings and `min_top_performers` top performers
    among the training listings."""

    tags_field: str
    tags_separator: str = ","
    price_field: str
    price_edges: tuple[float, ...] = Field(
        min_length=1, description="Ascending band edges: [6, 10] makes 3 bands."
    )
    categories: tuple[Category, ...] = Field(min_length=1)
    other_category: str = "other"
    min_listings: int = Field(ge=1)
    min_top_performers: int = Field(ge=1)

    @field_validator("price_edges")
    @classmethod
    def _ascending(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(set(value)):
            raise ValueError("price_edges must be strictly ascending")
        return value

    def groups(self, record: Mapping[str, Any]) -> tuple[str | None, str | None, str]:
        """(category in price band, category, all listings); a group is None when its fields are not given."""
        category, band = self.category(record.get(self.tags_field)), self.band(record.get(self.price_field))
        narrow = f"{category}, price {band}" if category is not None and band is not None else None
        return narrow, category, ALL_LISTINGS

    def category(self, tags: Any) -> str | None:
        if not isinstance(tags, str) or not tags.strip():
            return None
        words = {
            w for item in tags.lower().split(self.tags_separator) for w in re.findall(r"[a-z0-9]+", item)
        }
        return next((c.name for c in self.categories if words.intersection(c.keywords)), self.other_category)

    def band(self, price: Any) -> str | None:
        if not is_number(price):
            return None
        edges = self.price_edges
        if price < edges[0]:
            return f"under {_fmt(edges[0])}"
        for low, high in itertools.pairwise(edges):
            if price < high:
                return f"{_fmt(low)}-{_fmt(high)}"
        return f"{_fmt(edges[-1])}+"

    def benchmarked(self, listings: int, top_performers: int) -> bool:
        return listings >= self.min_listings and top_performers >= self.min_top_performers


class Segment(_Frozen):
    """A peer group as training saw it; benchmarks and scores only when it has enough peers to benchmark."""

    listings: int
    top_performers: int
    benchmarks: dict[str, Number] = Field(
        default_factory=dict,
        description="Per lever: the median of the segment's top performers (a value seen).",
    )
    scores: tuple[float, ...] = Field(
        default=(),
        description="The segment's out-of-sample effect probabilities, ascending: for percentiles.",
    )


@dataclass(frozen=True)
class Gap:
    metric: str
    value: Number | None
    benchmark: Number
    estimated_uplift: float
    message: str


@dataclass(frozen=True)
class Finding:
    segment: str
    segment_fallback: str | None
    effect_probability: float
    percentile: float
    gaps: list[Gap]


class Diagnoser(_Frozen):
    levers: tuple[Lever, ...]
    rule: SegmentRule
    segments: dict[str, Segment]
    min_uplift: float = Field(ge=0, description="Gaps worth less effect probability are not reported.")

    @classmethod
    def fit(
        cls,
        *,
        levers: Sequence[Lever],
        rule: SegmentRule,
        min_uplift: float,
        listings: Sequence[Mapping[str, Any]],
        top: npt.NDArray[np.bool_],
        scores: npt.NDArray[np.float64],
    ) -> Diagnoser:
        """Segments from training listings (as the model reads them): who is in each, the top performers'
        median per lever, and the listings' out-of-sample scores."""
        members: dict[str, list[int]] = defaultdict(list)
        for row, listing in enumerate(listings):
            for name in rule.groups(listing):
                if name is not None:
                    members[name].append(row)
        segments = {}
        for name, rows in sorted(members.items()):
            in_segment = np.asarray(rows)
            tops = in_segment[top[in_segment]]
            segment = Segment(listings=len(in_segment), top_performers=len(tops))
            if rule.benchmarked(segment.listings, segment.top_performers):
                segment = segment.model_copy(
                    update={
                        "benchmarks": _benchmarks(levers, [listings[i] for i in tops]),
                        "scores": tuple(sorted(round(float(s), 6) for s in scores[in_segment])),
                    }
                )
            segments[name] = segment
        if not segments.get(ALL_LISTINGS, _EMPTY).scores:
            raise ValueError("too few listings or top performers to benchmark even the whole data set")
        return cls(levers=tuple(levers), rule=rule, segments=segments, min_uplift=min_uplift)

    def segment_of(self, listing: Mapping[str, Any]) -> tuple[str, str | None]:
        """The segment a listing is compared with and, when it is not the listing's narrowest group, why."""
        narrowest, *wider = self.rule.groups(listing)
        chosen = next(n for n in (narrowest, *wider) if n is not None and self.segments.get(n, _EMPTY).scores)
        if chosen == narrowest:
            return chosen, None
        return chosen, f"{self._why_wider(narrowest, listing)}: compared with {chosen}"

    def percentile(self, segment: str, probability: float) -> float:
        """Where the probability falls among the segment's listings (0-100, ties counted half)."""
        scores = self.segments[segment].scores
        below = np.searchsorted(scores, probability, side="left")
        at_most = np.searchsorted(scores, probability, side="right")
        return round(100.0 * (below + at_most) / 2 / len(scores), 1)

    def diagnose(
        self,
        listings: Sequence[Mapping[str, Any]],
        probabilities: npt.NDArray[np.float64],
        contract: FeatureContract,
        predict: Predict,
    ) -> list[Finding]:
        """Each listing's gaps, biggest uplift first: every lever short of its segment's benchmark whose
        benchmark, set alone on the listing as sent, raises the effect probability by more than `min_uplift`.
        The variants are encoded from the listing as sent, so derived fields follow the changed lever exactly
        as they do when a client applies the gap and scores again."""
        read = [contract.with_derived(dict(listing)) for listing in listings]
        placed = [self.segment_of(listing) for listing in read]
        variants: list[dict[str, Any]] = []
        candidates: list[tuple[int, Lever, Any, Number]] = []
        for row, (listing, (segment, _)) in enumerate(zip(read, placed, strict=True)):
            for lever in self.levers:
                benchmark = self.segments[segment].benchmarks.get(lever.field)
                value = listing.get(lever.field)
                if benchmark is not None and lever.falls_short(value, benchmark):
                    variants.append({**listings[row], lever.field: benchmark})
                    candidates.append((row, lever, value, benchmark))
        gaps: list[list[Gap]] = [[] for _ in listings]
        if variants:
            matrix, errors = contract.encode(variants)
            if errors:
                raise ValueError(f"a benchmark does not fit the contract: {errors[:3]}")
            uplifts = predict(matrix) - probabilities[[row for row, *_ in candidates]]
            for (row, lever, value, benchmark), uplift in zip(candidates, uplifts.tolist(), strict=True):
                if uplift > self.min_uplift:
                    gaps[row].append(
                        Gap(lever.field, value, benchmark, round(uplift, 6), lever.say(value, benchmark))
                    )
        return [
            Finding(
                segment=segment,
                segment_fallback=fallback,
                effect_probability=round(float(p), 6),
                percentile=self.percentile(segment, float(p)),
                gaps=sorted(found, key=lambda gap: -gap.estimated_uplift),
            )
            for (segment, fallback), p, found in zip(placed, probabilities, gaps, strict=True)
        ]

    def _why_wider(self, narrowest: str | None, listing: Mapping[str, Any]) -> str:
        if narrowest is None:
            unknown = [
                name
                for name, group in (
                    (self.rule.tags_field, self.rule.category(listing.get(self.rule.tags_field))),
                    (self.rule.price_field, self.rule.band(listing.get(self.rule.price_field))),
                )
                if group is None
            ]
            return f"{' and '.join(unknown)} not given"
        seen = self.segments.get(narrowest)
        if seen is None:
            return f"{narrowest} had no listings in training"
        return (
            f"{narrowest} has too few peers to benchmark ({seen.listings} listings, {seen.top_performers} top "
            f"performers; it needs {self.rule.min_listings} and {self.rule.min_top_performers})"
        )


_EMPTY = Segment(listings=0, top_performers=0)


def _benchmarks(levers: Sequence[Lever], top_performers: Sequence[Mapping[str, Any]]) -> dict[str, Number]:
    """Per lever, the median of the top performers that give it: the lower middle value, so always a value
    the field takes (an integer field keeps integers, a 0/1 flag stays 0 or 1)."""
    out: dict[str, Number] = {}
    for lever in levers:
        values = np.asarray(
            [t[lever.field] for t in top_performers if is_number(t.get(lever.field))], dtype=float
        )
        if len(values):
            median = float(np.quantile(values, 0.5, method="inverted_cdf"))
            out[lever.field] = int(median) if np.all(values == np.round(values)) else round(median, 6)
    return out


def _fmt(number: Number) -> str:
    """41 -> '41', 5.8 -> '5.8', 7.25 -> '7.25'."""
    if float(number).is_integer():
        return str(int(number))
    return f"{number:.2f}".rstrip("0").rstrip(".")
