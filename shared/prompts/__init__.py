"""Prompts are Jinja2 templates in this folder, named ``{persona}.{channel}.j2``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

FOLDER = Path(__file__).parent


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # lazy: the first turn pays for it, not the cold import

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(FOLDER),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - prompts are plain text for a model, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(persona: str, channel: str, **context: Any) -> str:
    name = f"{persona}.{channel}.j2"
    if not (FOLDER / name).is_file():
        name = f"{persona}.web.j2"
    return _environment().get_template(name).render(**context).strip()
