"""Prompts are Jinja2 templates in this folder, named ``{persona}.{channel}.j2``.

What the customer said or had remembered is data, never instructions: templates show it through
``remembered``, which quotes each item on one line as a JSON string with ``<`` and ``>`` escaped
(so it cannot close or forge the section it sits in) and bounds each item and the whole.

The shop's own instructions (``Shop.system_prompt_addition``) are the operator's, so they are
instructions, but in their own section after the rules on prices (the Shop model bounds them);
``shop_instructions`` removes any marker that would close or open that section.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

    from shared.models import Customer, Shop

FOLDER = Path(__file__).parent
FACT_CHARS = 300  # per remembered fact, as the remember tool allows
SUMMARY_CHARS = 1200  # as shared.memory keeps it
MEMORY_CHARS = 3000  # the whole memory section: the newest facts are kept
_SECTION_MARKER = re.compile(r"<\s*/?\s*shop_instructions\s*>", re.IGNORECASE)


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # lazy: the first turn pays for it, not the cold import

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(FOLDER),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - prompts are plain text for a model, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    environment.globals["remembered"] = remembered
    environment.globals["shop_instructions"] = shop_instructions
    environment.filters["quoted"] = quoted  # {{ text | quoted(600) }}: data on one line
    return environment


def quoted(text: str, limit: int) -> str:
    """``text`` as one JSON string of at most ``limit`` characters (before quoting), with what
    could end a line, a quote or a section escaped."""
    text = " ".join(text.split())  # str.split also splits on Unicode line separators
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    literal = json.dumps(text, ensure_ascii=False)
    return "".join(
        c if c.isprintable() and c not in "<>" else f"\\u{ord(c):04x}" for c in literal
    )


@dataclass(frozen=True)
class PromptMemory:
    """What a prompt shows of a customer's memory: the summary and the items recalled for the
    turn (``shared.memory``)."""

    summary: str
    facts: list[str]

    @classmethod
    def of_customer(cls, customer: Customer | None) -> PromptMemory | None:
        """The memory fields on the customer itself (from before the memory collection)."""
        return cls(customer.summary, list(customer.memory)) if customer is not None else None


def remembered(memory: PromptMemory | None) -> list[str]:
    """The summary and facts as quoted lines for the memory section; when they would exceed
    MEMORY_CHARS, the first facts are left out."""
    if memory is None:
        return []
    lines = [f"summary: {quoted(memory.summary, SUMMARY_CHARS)}"] if memory.summary else []
    budget = MEMORY_CHARS - sum(len(line) for line in lines)
    facts: list[str] = []
    for fact in reversed(memory.facts):
        line = f"- {quoted(fact, FACT_CHARS)}"
        budget -= len(line)
        if budget < 0:
            break
        facts.append(line)
    return [*lines, *reversed(facts)]


def shop_instructions(shop: Shop) -> str:
    """The shop's own instructions for their section (at most SYSTEM_PROMPT_ADDITION_CHARS: the
    Shop model refuses more), the section's markers removed, line breaks kept (an operator may
    write a list) but blank runs collapsed."""
    text = _SECTION_MARKER.sub("", shop.system_prompt_addition)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def personas() -> list[str]:
    """The personas a shop may choose: those with a web template (every channel falls back on
    it)."""
    return sorted(path.name.removesuffix(".web.j2") for path in FOLDER.glob("*.web.j2"))


# Channels that read like another: Telegram is plain text, as WhatsApp.
_TEMPLATE_CHANNEL = {"telegram": "whatsapp"}


def template_name(persona: str, channel: str) -> str:
    """``{persona}.{channel}.j2``, else the persona's web template; an unknown persona is a
    configuration error, reported by Jinja2 as a missing template."""
    name = f"{persona}.{_TEMPLATE_CHANNEL.get(channel, channel)}.j2"
    return name if (FOLDER / name).is_file() else f"{persona}.web.j2"


def render(persona: str, channel: str, **context: Any) -> str:
    """``memory`` (a PromptMemory) is what the turn recalled; without it, the customer's own
    memory fields are shown. ``web_search``: the turn offers the web_search tool (its rules)."""
    template = _environment().get_template(template_name(persona, channel))
    context.setdefault("memory", PromptMemory.of_customer(context.get("customer")))
    context.setdefault("web_search", False)  # whether the web_search tool is offered
    return template.render(channel_name=channel.capitalize(), **context).strip()


def render_named(name: str, **context: Any) -> str:
    """A template of this folder that is no persona's (``campaign.j2``, ``consolidate.j2``)."""
    return _environment().get_template(name).render(**context).strip()
