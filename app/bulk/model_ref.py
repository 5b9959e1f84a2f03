"""`NAME`, `NAME@ALIAS` or `NAME/VERSION`: which registered version a bulk job scores with, resolved once."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from model_registry.registry import ModelRegistry


class UnknownVersion(Exception):
    """The reference names no registered version."""


@dataclass(frozen=True)
class ModelRef:
    name: str
    alias: str | None
    version: int | None

    @classmethod
    def parse(cls, text: str, default_alias: str) -> ModelRef:
        if "@" in text:
            name, alias = text.split("@", 1)
            return cls._checked(name, alias, None, text)
        if "/" in text:
            name, number = text.rsplit("/", 1)
            if not number.isdigit():
                raise ValueError(f"{text!r}: the version after '/' must be a number")
            return cls._checked(name, None, int(number), text)
        return cls._checked(text, default_alias, None, text)

    @classmethod
    def _checked(cls, name: str, alias: str | None, version: int | None, text: str) -> ModelRef:
        if not name or alias == "":
            raise ValueError(f"{text!r} is not NAME, NAME@ALIAS or NAME/VERSION")
        return cls(name, alias, version)

    def resolve(self, registry: ModelRegistry) -> int:
        """The version number now: an alias is read once, so a promotion mid-job changes nothing."""
        if self.version is not None:
            try:
                return registry.get_version(self.name, self.version).version
            except MlflowException as exc:
                raise UnknownVersion(f"{self.name} has no version {self.version}") from exc
        assert self.alias is not None  # parse gives an alias or a version
        ref = registry.resolve(self.name, self.alias)
        if ref is None:
            raise UnknownVersion(f"{self.name} has no version with alias {self.alias!r}")
        return ref.version

    def uri(self, version: int) -> str:
        """The MLflow URI of the resolved version (never the alias: every worker must load the same one)."""
        return f"models:/{self.name}/{version}"
