"""The product catalogue of a cross-sell model version: the add-ons, who may buy each, what each booster sees.

Training reads it from the spec, labels its rows with it and stores it in the version's metadata["products"];
serving reads it back from there to decide what it may offer. The rules live in the version, not in code, so
the rows a booster learned from and the customers it is offered to are picked by the very same rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from model_registry.contract import FeatureContract


class Eligibility(BaseModel):
    """Who may buy a product: the value of one record field, e.g. internet_service not "No"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="The API field the rule reads, e.g. internet_service.")
    any_of: tuple[str, ...] = Field(default=(), description="Eligible when the field holds one of these.")
    none_of: tuple[str, ...] = Field(
        default=(), description="Eligible when the field holds a value but these."
    )

    @model_validator(mode="after")
    def _one_rule(self) -> Eligibility:
        if bool(self.any_of) == bool(self.none_of):
            raise ValueError("an eligibility rule needs exactly one of any_of, none_of")
        return self

    def admits(self, record: dict[str, Any]) -> bool:
        """Absent, null or non-text values say nothing about the customer: never eligible on them."""
        value = record.get(self.field)
        if not isinstance(value, str):
            return False
        return value in self.any_of if self.any_of else value not in self.none_of


class Product(BaseModel):
    """One add-on. Its name is both the booster key and the API field saying whether the customer owns it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    eligible_when: Eligibility
    owned: str = Field(default="Yes", description="The field's value for a customer who has the product.")
    not_owned: str = Field(
        default="No", description="The value for an eligible customer who does not have it."
    )
    hidden_fields: tuple[str, ...] = Field(
        default=(),
        validate_default=True,
        description="Fields the product's booster never sees; always includes the product's own.",
    )

    @field_validator("hidden_fields")
    @classmethod
    def _hides_itself(cls, fields: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        # A booster that sees its own product's field reads the answer: hiding it is not optional.
        name = info.data.get("name")
        return fields if name is None or name in fields else (name, *fields)

    def eligible(self, record: dict[str, Any]) -> bool:
        return self.eligible_when.admits(record)

    def owns(self, record: dict[str, Any]) -> bool:
        return self.eligible(record) and record.get(self.name) == self.owned

    def may_offer(self, record: dict[str, Any]) -> bool:
        """Eligible and known not to own it. Any other value of the field (absent, null, unknown) might mean
        the customer has it already, so the product is not offered on a guess."""
        return self.eligible(record) and record.get(self.name) == self.not_owned


class ProductCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    products: tuple[Product, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ProductCatalogue:
        names = [p.name for p in self.products]
        if len(set(names)) != len(names):
            raise ValueError(f"product names must be unique: {names}")
        return self

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.products]

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> ProductCatalogue:
        return cls.model_validate({"products": metadata["products"]})

    def to_metadata(self) -> list[dict[str, Any]]:
        return [p.model_dump(mode="json") for p in self.products]


def hide_fields(
    matrix: npt.NDArray[np.float32], contract: FeatureContract, fields: tuple[str, ...]
) -> npt.NDArray[np.float32]:
    """A copy of the encoded matrix with each field's block set to missing, as in training.

    A booster trained on a block that is always missing has no split on it, so its scores cannot depend on
    those fields; hiding them at serving too keeps reasons and scores identical to what training saw.
    """
    hidden = matrix.copy()
    offsets = contract.column_offsets
    for index, feature in enumerate(contract.features):
        if feature.name in fields:
            hidden[:, offsets[index] : offsets[index] + feature.width] = np.nan
    return hidden
