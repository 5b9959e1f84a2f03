"""MkDocs hooks: the pages generated from the code at every build, so they cannot drift from it.

- `openapi.json`: the service's OpenAPI document, from `create_app(...).openapi()` (rendered by the API page);
- the configuration page's `<!-- generated: settings -->` marker: one table row per field of every settings
  class, with its environment variable, default and description.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

SETTINGS_MARKER = "<!-- generated: settings -->"


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    """Every settings class, with who reads it; imported here so a build without the app fails loudly."""
    from app.settings import Settings
    from model_registry.settings import RegistrySettings
    from training.cli import TrainingSettings
    from training.promotion import GateSettings

    return [
        ("the registry, read by the service and `clm` alike", RegistrySettings),
        ("the service (`python -m app`)", Settings),
        ("training and the jobs (`clm`)", TrainingSettings),
        ("the promotion gate (`clm promote`)", GateSettings),
    ]


def environment_names(settings: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    if isinstance(field.validation_alias, AliasChoices):
        return [str(choice) for choice in field.validation_alias.choices]
    prefix = settings.model_config.get("env_prefix") or ""
    return [f"{prefix}{name}".upper()]


def default_text(field: FieldInfo) -> str:
    if field.default is None:
        return "unset"
    if isinstance(field.default, bool | dict | list):
        return json.dumps(field.default)
    return str(field.default)


def settings_reference() -> str:
    """The configuration tables: every field of every settings class, the ones inherited shown once."""
    sections, shown = [], set()
    for reader, settings in settings_classes():
        rows = []
        for name, field in settings.model_fields.items():
            variables = environment_names(settings, name, field)
            if variables[0] in shown:
                continue
            shown.add(variables[0])
            names = " or ".join(f"`{variable}`" for variable in variables)
            description = (field.description or "").replace("|", "\\|").replace("\n", " ")
            default = default_text(field).replace("|", "\\|")
            rows.append(f"| {names} | `{default}` | {description} |")
        sections.append(
            f"### {settings.__name__}: {reader}\n\n"
            f"`{settings.__module__}.{settings.__name__}`\n\n"
            "| variable | default | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n"
        )
    return "\n".join(sections)


def openapi_document() -> dict[str, Any]:
    """The document the service serves before any model loads: routes, bodies, errors (records untyped)."""
    from app.main import create_app
    from app.settings import Settings

    return create_app(Settings()).openapi()


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    document = json.dumps(openapi_document(), indent=2, sort_keys=True)
    files.append(File.generated(config, "openapi.json", content=document))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if SETTINGS_MARKER in markdown:
        return markdown.replace(SETTINGS_MARKER, settings_reference())
    return markdown
