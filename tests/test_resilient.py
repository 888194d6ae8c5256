"""Retries with backoff, then fallbacks (LLM_FALLBACKS), over scripted providers."""

from __future__ import annotations

import time

import pytest

from shared.exceptions import (
    EmbeddingsUnavailableError,
    LLMRateLimitedError,
    LLMRequestError,
    LLMUnavailableError,
)
from shared.llm import ChatMessage, Completion, LLMRequest, TextDelta
from shared.llm.resilient import ResilientLLM
from shared.rules import RulesResponder
from tests.llm.fakes import ScriptedLLM
from tests.llm.script import Fail, Reply, Script, Stall, vector_of

MESSAGES = [ChatMessage("user", "Bonjour")]


def _resilient(*scripts: Script, retries: int = 2) -> tuple[ResilientLLM, list[float]]:
    pauses: list[float] = []
    llm = ResilientLLM([ScriptedLLM(s) for s in scripts], retries=retries, sleep=pauses.append)
    return llm, pauses


def test_retryable_errors_are_retried_with_growing_backoff() -> None:
    primary = Script().then(Fail(500), Fail(429), Reply("ok"))
    llm, pauses = _resilient(primary)
    assert llm.complete(LLMRequest(MESSAGES)).text == "ok"
    assert len(primary.seen) == 3
    assert len(pauses) == 2
    assert 0 <= pauses[0] <= 0.25
    assert 0 <= pauses[1] <= 0.5


def test_falls_back_after_the_retries() -> None:
    primary = Script().then(Fail(503), Fail(503), Fail(503))
    fallback = Script().then(Reply("from the fallback"))
    llm, _ = _resilient(primary, fallback)
    assert llm.complete(LLMRequest(MESSAGES)).text == "from the fallback"
    assert len(primary.seen) == 3


def test_a_refused_request_moves_on_at_once() -> None:
    primary = Script().then(Fail(401))
    fallback = Script().then(Reply("ok"))
    llm, pauses = _resilient(primary, fallback)
    assert llm.complete(LLMRequest(MESSAGES)).text == "ok"
    assert len(primary.seen) == 1
    assert pauses == []


def test_timeouts_are_retried() -> None:
    llm, _ = _resilient(Script().then(Stall(5), Reply("ok")))
    assert llm.complete(LLMRequest(MESSAGES)).text == "ok"


def test_when_everything_fails_the_last_error_is_raised() -> None:
    llm, _ = _resilient(
        Script().then(Fail(500), Fail(500)), Script().then(Fail(429), Fail(429)), retries=1
    )
    with pytest.raises(LLMRateLimitedError):
        llm.complete(LLMRequest(MESSAGES))


def test_streaming_falls_back_before_any_text() -> None:
    llm, _ = _resilient(
        Script().then(Fail(500)), Script().then(Reply("streamed", chunks=2)), retries=0
    )
    events = list(llm.stream(LLMRequest(MESSAGES)))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "streamed"
    assert isinstance(events[-1], Completion)


def test_a_stream_that_broke_after_text_is_not_replayed() -> None:
    class Broken(ScriptedLLM):
        def stream(self, request):  # type: ignore[no-untyped-def]
            yield TextDelta("Les sand")
            raise LLMUnavailableError("connection reset")

    fallback = Script().then(Reply("should not be used"))
    llm = ResilientLLM([Broken(), ScriptedLLM(fallback)], retries=2, sleep=lambda _: None)
    with pytest.raises(LLMUnavailableError):
        list(llm.stream(LLMRequest(MESSAGES)))
    assert fallback.seen == []


def test_no_new_attempt_starts_once_the_budget_is_spent() -> None:
    primary = Script().then(Fail(503), Fail(503), Fail(503))
    fallback = Script().then(Reply("too late"))
    llm = ResilientLLM(
        [ScriptedLLM(primary), ScriptedLLM(fallback)], retries=2, budget=0.0, sleep=lambda _: None
    )
    with pytest.raises(LLMUnavailableError):
        llm.complete(LLMRequest(MESSAGES))
    assert len(primary.seen) == 1
    assert fallback.seen == []


class SlowFailure(ScriptedLLM):
    """A provider that answers 503 after ``seconds``: it spends the turn's time."""

    def __init__(self, script: Script, seconds: float) -> None:
        super().__init__(script)
        self.seconds = seconds

    def complete(self, request: LLMRequest) -> Completion:
        time.sleep(self.seconds)
        return super().complete(request)


@pytest.mark.parametrize(("time_left", "fallback_asked"), [(0.7, False), (1.5, True)])
def test_a_fallback_does_not_start_with_under_half_a_second_left(
    time_left: float, fallback_asked: bool
) -> None:
    primary = Script().then(Fail(401))
    fallback = Script().then(Reply("from the fallback"))
    llm = ResilientLLM(
        [SlowFailure(primary, 0.3), ScriptedLLM(fallback)], retries=0, sleep=lambda _: None
    )
    request = LLMRequest(MESSAGES, deadline=time.monotonic() + time_left)
    if fallback_asked:
        assert llm.complete(request).text == "from the fallback"
    else:
        with pytest.raises(LLMRequestError):  # the primary's own error: the customer is told
            llm.complete(request)
    assert len(fallback.seen) == int(fallback_asked)


def test_a_retry_does_not_start_with_under_half_a_second_left() -> None:
    primary = Script().then(Fail(503), Reply("too late"))
    pauses: list[float] = []
    llm = ResilientLLM([SlowFailure(primary, 0.3)], retries=2, sleep=pauses.append)
    with pytest.raises(LLMUnavailableError):
        llm.complete(LLMRequest(MESSAGES, deadline=time.monotonic() + 0.7))
    assert len(primary.seen) == 1
    assert pauses == []


def test_embeddings_go_to_the_first_provider_that_has_them_and_are_retried() -> None:
    embedder = Script().then(Fail(503), Reply())
    pauses: list[float] = []
    llm = ResilientLLM(
        [RulesResponder(), ScriptedLLM(embedder, embed_model="embed-a")],
        retries=2,
        sleep=pauses.append,
    )
    assert llm.supports_embeddings and llm.embed_model == "embed-a"
    assert llm.embed(["Sandales"]) == [vector_of("Sandales")]
    assert [seen.inputs for seen in embedder.seen] == [["Sandales"], ["Sandales"]]
    assert len(pauses) == 1


def test_embeddings_never_fall_back_to_another_model() -> None:
    # Vectors of two models do not compare: a failing embedder fails the call.
    first, second = Script().then(Fail(400)), Script().then(Reply())
    llm = ResilientLLM(
        [ScriptedLLM(first, embed_model="embed-a"), ScriptedLLM(second, embed_model="embed-b")],
        sleep=lambda _: None,
    )
    with pytest.raises(LLMRequestError):
        llm.embed(["Sandales"])
    assert second.seen == []


def test_a_chain_without_embeddings_says_so() -> None:
    llm = ResilientLLM([RulesResponder(), ScriptedLLM(Script())], sleep=lambda _: None)
    assert not llm.supports_embeddings and llm.embed_model == ""
    with pytest.raises(EmbeddingsUnavailableError):
        llm.embed(["Sandales"])
