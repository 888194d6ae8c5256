"""What a shopper's screen shows while a reply streams (SSE): never an unchecked amount."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from shared.app import App
from shared.llm import Completion, LLMRequest, TextDelta
from shared.settings import Settings
from tests.fixtures.app import Client, LambdaClient
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Reply, Script

CUT = "|"  # where a scripted reply's text is cut into deltas


class CutLLM(ScriptedLLM):
    """Streams each scripted reply in the pieces its text marks with ``|``, as a provider may
    cut an amount: "12", " 0", "00 FC", "FA"."""

    def stream(self, request: LLMRequest) -> Iterator[TextDelta | Completion]:
        completion = self.complete(request)
        yield from (TextDelta(piece) for piece in completion.text.split(CUT) if piece)
        yield Completion(
            completion.text.replace(CUT, ""),
            completion.tool_calls,
            completion.usage,
            completion.model,
        )


def sse(client: Client, text: str) -> list[tuple[str, dict[str, Any]]]:
    result = client.request(
        "POST",
        "/chat",
        headers={"content-type": "application/json", "accept": "text/event-stream"},
        body=json.dumps({"message": text}).encode(),
    )
    assert result.status == 200, result.body
    events = []
    for block in result.body.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def screens(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The reply as the widget shows it after each event (web/src/api.js: a delta appends, a
    replace replaces)."""
    shown, seen = "", []
    for kind, data in events:
        if kind == "delta":
            shown += data["text"]
        elif kind == "replace":
            shown = data["text"]
        seen.append(shown)
    return seen


def test_an_invented_price_cut_across_deltas_never_reaches_the_screen(
    client: Client, app: App
) -> None:
    app.llm_override = CutLLM(
        Script().then(
            Reply(
                "Bonne nouvelle ! |Le Boubou brodé |est à 12| 0|00 FC|FA aujourd'hui. |Il est |"
                "brodé main."
            ),
            Reply("Le Boubou brodé est à 45 000 FCFA."),  # the rewrite the guard asks for
        )
    )
    events = sse(client, "Combien coûte le boubou brodé ?")
    for screen in screens(events):
        assert "12" not in screen
    assert [data["text"] for kind, data in events if kind == "delta"] == [
        "Bonne nouvelle ! ",
        "Le Boubou brodé ",
        "est à ",
    ]
    assert events[-2] == ("replace", {"text": "Le Boubou brodé est à 45 000 FCFA."})
    assert events[-1][0] == "done"
    assert events[-1][1]["reply"] == "Le Boubou brodé est à 45 000 FCFA."


def test_a_checked_price_is_released_once_its_sentence_is_complete(
    client: Client, app: App
) -> None:
    app.llm_override = CutLLM(
        Script().then(Reply("Le Boubou brodé |est à 45| 0|00 FC|FA. |Il est |brodé |main."))
    )
    events = sse(client, "Combien coûte le boubou brodé ?")
    deltas = [data["text"] for kind, data in events if kind == "delta"]
    assert deltas == ["Le Boubou brodé ", "est à ", "45 000 FCFA. ", "Il est ", "brodé ", "main."]
    assert "replace" not in [kind for kind, _ in events]
    assert events[-1][1]["reply"] == "".join(deltas)


def test_text_without_amounts_streams_as_it_is_written(client: Client, app: App) -> None:
    text = "Bonjour ! Nos boubous sont brodés à la main, en bazin riche. Voulez-vous les voir ?"
    app.llm_override = ScriptedLLM(Script().then(Reply(text, chunks=8)))
    events = sse(client, "Bonjour")
    kinds = [kind for kind, _ in events]
    assert kinds.count("delta") > 1
    assert kinds[-1] == "done" and "replace" not in kinds
    assert screens(events)[-1] == events[-1][1]["reply"] == text


def test_where_the_platform_buffers_the_chat_answers_json(make_app: Callable[..., App]) -> None:
    """On AWS Lambda (HTTP API sends a response whole) an SSE stream would only arrive at the
    end: the function answers JSON, which the widget reads the same (web/src/api.js)."""
    app = make_app(AWS_LAMBDA_FUNCTION_NAME="comptoir-dev-chat")
    assert not app.settings.http_streaming
    result = LambdaClient().request(
        "POST",
        "/chat",
        headers={"content-type": "application/json", "accept": "text/event-stream"},
        body=json.dumps({"message": "Bonjour"}).encode(),
    )
    assert result.status == 200, result.body
    assert result.headers["content-type"].startswith("application/json")
    assert result.json()["reply"]


def test_streaming_can_be_turned_on_where_the_platform_streams() -> None:
    environ = {"AWS_LAMBDA_FUNCTION_NAME": "comptoir-dev-chat", "HTTP_STREAMING": "true"}
    assert Settings.from_env(environ, env_file=None).http_streaming
    assert Settings.from_env({}, env_file=None).http_streaming
