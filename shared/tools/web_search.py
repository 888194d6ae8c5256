"""``web_search``: search the web through a SearXNG instance (``SEARXNG_URL``), for a shop that
turned it on (``Shop.web_search``).

Results are the web's, not the shop's: the model reads them with their sources and is told to
cite them and never to take a price of the shop's own products from them. They never reach the
turn's price facts (``ctx.products``, the offer, the FAQ), so an amount copied from them fails
the price guard like an invented one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import log
from shared.exceptions import ToolError
from shared.llm import MIN_CALL_SECONDS
from shared.tools.base import Tool, TurnContext

if TYPE_CHECKING:
    import httpx

RESULTS = 5
TIMEOUT = 5.0  # seconds at most for SearXNG's answer (it waits on its own engines)
MIN_SEARCH_SECONDS = 1.0  # less time left than this: no search, the model answers without it
TITLE_CHARS = 200
SNIPPET_CHARS = 400
NOTE = (
    "Web results, not the shop's: cite the source URL of what you use. Never take a price, "
    "stock or offer of the shop's own products from them: only the catalogue's count."
)


class _Result(BaseModel):
    """One result of SearXNG's JSON API (it sends many more fields: ignored)."""

    model_config = ConfigDict(extra="ignore")
    url: str = ""
    title: str = ""
    content: str = ""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    results: list[_Result]


class SearXNG:
    """A SearXNG instance's ``GET /search?format=json`` (the instance must allow the json
    format in its ``search.formats``)."""

    def __init__(self, base_url: str, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client

    def search(self, query: str, lang: str, timeout: float) -> list[dict[str, str]]:
        """The first RESULTS results with a web address, as title, url and snippet; a failure
        is a ``ToolError`` (the model reads it and answers without the web)."""
        import httpx  # lazy, as every SDK: a turn without web search never loads it

        from shared.channels.base import http_client  # the shared pool, its URL logs quiet

        client = self._client or http_client()
        params = {"q": query, "format": "json", "language": lang, "safesearch": "1"}
        try:
            response = client.get(f"{self.base_url}/search", params=params, timeout=timeout)
        except httpx.TimeoutException:
            log.log_event("web_search", outcome="timeout")
            raise ToolError("the web search took too long; answer without it") from None
        except httpx.HTTPError as exc:
            log.log_event("web_search", outcome="unreachable", error=type(exc).__name__)
            raise ToolError("the web search is unavailable; answer without it") from None
        if response.status_code != 200:
            log.log_event("web_search", outcome="refused", status=response.status_code)
            raise ToolError("the web search is unavailable; answer without it")
        try:
            answer = _Answer.model_validate_json(response.content)
        except ValidationError:
            log.log_event("web_search", outcome="unreadable")
            raise ToolError("the web search answered something unreadable") from None
        found = [r for r in answer.results if r.url.startswith(("https://", "http://"))]
        return [
            {
                "title": _short(r.title, TITLE_CHARS),
                "url": r.url,
                "snippet": _short(r.content, SNIPPET_CHARS),
            }
            for r in found[:RESULTS]
        ]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class WebSearchArgs(BaseModel):
    query: str = Field(min_length=1, max_length=300, description="What to look up on the web.")


class WebSearch(Tool):
    name = "web_search"
    description = (
        "Search the web for general information the catalogue and FAQ do not hold (how to use "
        "or care for a product, what a term means, news). Cite the sources you use. Never use "
        "it for the prices, stock or offers of this shop's own products: only the catalogue."
    )
    Args = WebSearchArgs

    def offered(self, ctx: TurnContext) -> bool:
        return ctx.web_search is not None and ctx.shop.web_search

    def run(self, ctx: TurnContext, args: WebSearchArgs) -> dict[str, Any]:
        if ctx.web_search is None or not ctx.shop.web_search:
            raise ToolError("web search is not available here")
        timeout = TIMEOUT
        if ctx.deadline is not None:  # leave the model time to answer after the search
            timeout = min(timeout, ctx.deadline - time.monotonic() - MIN_CALL_SECONDS)
        if timeout < MIN_SEARCH_SECONDS:
            raise ToolError("no time left for a web search; answer without it")
        results = ctx.web_search.search(args.query, ctx.lang, timeout)
        sources = [{"source": n, **r} for n, r in enumerate(results, 1)]
        return {"results": sources, "note": NOTE}
