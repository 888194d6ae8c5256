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


# Channels that read like another: Telegram is plain text, as WhatsApp.
_TEMPLATE_CHANNEL = {"telegram": "whatsapp"}


def template_name(persona: str, channel: str) -> str:
    """``{persona}.{channel}.j2``, else the persona's web template; an unknown persona is a
    configuration error, reported by Jinja2 as a missing template."""
    name = f"{persona}.{_TEMPLATE_CHANNEL.get(channel, channel)}.j2"
    return name if (FOLDER / name).is_file() else f"{persona}.web.j2"


def render(persona: str, channel: str, **context: Any) -> str:
    template = _environment().get_template(template_name(persona, channel))
    return template.render(channel_name=channel.capitalize(), **context).strip()
