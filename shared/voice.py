"""Live voice in the widget: the browser talks to the provider's realtime API directly (WebRTC);
the server mints its short-lived key, runs its tool calls and keeps its transcript.

- ``start``: a short-lived client secret from the provider (OpenAI Realtime
  ``POST /v1/realtime/client_secrets``), configured with the shop's persona prompt, the
  catalogue retrieved for the conversation so far, the language and the tools. The server's
  long-lived key never leaves this module (nor reaches a log).
- ``run_tool``: a tool call the provider sent to the browser, run here with the conversation's
  ``TurnContext`` through the agent's own path (the browser never decides a result); the price
  guard withholds any text in the output stating an amount the catalogue does not.
- ``add_transcript``: each line of the call, a message of the conversation (``voice=True``),
  so history, memory, orders and the console see the call like a chat.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from shared import conversations, crm, jsonsafe
from shared.agent import facts_of, run_tool
from shared.chat import FAQ_PER_TURN, PRODUCTS_PER_TURN, ChatService, detect_language
from shared.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    UnknownSessionError,
    VoiceOffError,
    VoiceProviderBusyError,
    VoiceProviderError,
)
from shared.ids import is_session_id, new_sortable_id
from shared.llm import ToolCall
from shared.log import log_event
from shared.models import Conversation, Message, Product, Role, Shop, VoiceSettings
from shared.money import format_price
from shared.price_guard import PriceFacts
from shared.prompts import render
from shared.tools import TOOLS
from shared.tools.search_products import LANGUAGE_NAMES

if TYPE_CHECKING:
    import httpx

# The tools a voice call offers: finding, showing and ordering (no handoff, memory or linking,
# which want the chat's screen).
VOICE_TOOLS = ("search_products", "get_product", "capture_lead", "create_payment_link")
# Only for opening the call: the connection, once made, outlives it.
SECRET_SECONDS = 120
PROVIDER_TIMEOUT = 10.0
TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe"  # OpenAI's: the customer's side of the transcript
BUSY_RETRY_AFTER = 30  # seconds, when the provider's 429 names none
CONTEXT_MESSAGES = 6  # the last customer messages the catalogue context is retrieved for
VOICE_ITEMS = "voice_items"  # a transcript line's provider item id -> its message id
ITEM_DAYS = 2  # how long a line's item id is remembered (a retry comes within seconds)
MONEY_KEYS = (
    "price",
    "unit_price",
    "total",
)  # the tools' amounts, also written out as "<key>_text"
WITHHELD = "(withheld: it states an amount that is not a catalogue price)"
VOICE_RULES = (
    "This is a live voice call: answer by voice, briefly, one or two sentences at a time, "
    "in {language}. Say prices exactly as the tools return them (their price_text, "
    "total_text), never another amount. Read no links or ids aloud."
)


@dataclass(frozen=True)
class VoiceSession:
    """What the browser needs to open the call, the provider's key excepted."""

    provider: Literal["openai", "gemini"]
    client_secret: str  # the short-lived key
    expires_at: float
    url: str  # where the browser posts its SDP offer (OpenAI) or opens its socket (Gemini)
    model: str
    voice: str
    session_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "client_secret": self.client_secret,
            "expires_at": self.expires_at,
            "url": self.url,
            "model": self.model,
            "voice": self.voice,
            "session_id": self.session_id,
        }


class Voice:
    def __init__(self, chat: ChatService, client: httpx.Client | None = None) -> None:
        """``client``: the HTTP client of the provider calls (tests inject one)."""
        self.chat = chat
        self.settings = chat.settings
        self._client = client

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            import httpx  # lazy: a chat turn never pays for it

            self._client = httpx.Client(
                timeout=httpx.Timeout(PROVIDER_TIMEOUT, connect=5.0), follow_redirects=False
            )
        return self._client

    def available(self, shop: Shop) -> bool:
        """Whether the shop's widget offers a call: voice on, and the server has its key."""
        return shop.voice is not None and shop.voice.enabled and self._key(shop.voice) is not None

    def start(self, shop: Shop, session_id: str | None) -> VoiceSession:
        """A voice call on the web conversation ``session_id`` (a new one when unknown)."""
        voice = shop.voice
        key = self._key(voice) if voice is not None and voice.enabled else None
        if voice is None or key is None:
            raise VoiceOffError("live voice is off for this shop")
        store, now = self.chat.store, self.chat.clock()
        conversation, _ = conversations.open_session(store, shop.id, session_id, "web", now)
        lang = self._language(shop, conversation)
        instructions = self.instructions(shop, conversation, lang)
        ctx = self.chat.turn_context(shop, conversation, lang)
        tools = [TOOLS[name].spec for name in VOICE_TOOLS if TOOLS[name].offered(ctx)]
        if voice.provider == "gemini":
            return self._gemini(voice, key, conversation.id, instructions, tools, lang)
        return self._openai(voice, key, conversation.id, instructions, tools, lang)

    def instructions(self, shop: Shop, conversation: Conversation, lang: str) -> str:
        """The shop's persona prompt as a web turn renders it, with the catalogue and FAQ
        retrieved for what the customer said so far, and the rules of speaking."""
        said = [m.text for m in conversation.recent if m.role == "user"][-CONTEXT_MESSAGES:]
        query = "\n".join(said)
        index = self.chat.catalog.get(shop)
        products = index.search_products(query, PRODUCTS_PER_TURN) if query else []
        faq = index.search_faq(query, FAQ_PER_TURN, lang) if query else []
        customer = crm.conversation_customer(self.chat.store, shop.id, conversation)
        prompt = render(
            shop.persona,
            "web",
            shop=shop,
            lang=lang,
            products=products,
            faq=faq,
            customer=customer,
            price=lambda p: format_price(p.price, p.currency, lang),
        )
        return f"{prompt}\n\n{VOICE_RULES.format(language=LANGUAGE_NAMES.get(lang, lang))}"

    def run_tool(self, shop: Shop, session_id: str, call_id: str, name: str, arguments: str) -> str:
        """The output (a JSON string) of the call's tool ``name`` on ``arguments`` (the
        provider's JSON string); a tool's failure is an output the model reads, as in chat."""
        if name not in VOICE_TOOLS:
            raise InvalidInputError(f"unknown tool {name!r}; use one of {', '.join(VOICE_TOOLS)}")
        conversation = self._conversation(shop, session_id)
        ctx = self.chat.turn_context(shop, conversation, self._language(shop, conversation))
        ctx.show(*self._shown(shop, conversation))
        try:
            parsed = jsonsafe.loads(arguments) if arguments.strip() else {}
        except InvalidInputError:
            parsed = None
        args = parsed if isinstance(parsed, dict) else {"_raw": arguments}
        offered = {n: TOOLS[n] for n in VOICE_TOOLS if TOOLS[n].offered(ctx)}
        output = run_tool(offered, ctx, ToolCall(call_id, name, args))
        if ctx.conversation != conversation:  # an order names its customer, as in a chat turn
            conversations.update(
                self.chat.store,
                shop.id,
                conversation.id,
                lambda current: current.model_copy(
                    update={
                        k: getattr(ctx.conversation, k)
                        for k in conversations.TURN_FIELDS
                        if getattr(ctx.conversation, k) != getattr(conversation, k)
                    }
                ),
            )
        guarded = _guarded(output, facts_of(ctx)(), ctx.lang, ctx.shop.currency)
        return json.dumps(guarded, ensure_ascii=False, default=str)

    def add_transcript(
        self, shop: Shop, session_id: str, role: Role, text: str, item_id: str
    ) -> Message:
        """Store a line of the call once per ``item_id`` (the provider's conversation item): a
        retried post finds the message the first one made."""
        conversation = self._conversation(shop, session_id)
        store, now = self.chat.store, self.chat.clock()
        key = hashlib.sha256(f"{conversation.id}\n{item_id}".encode()).hexdigest()[:40]
        message_id = new_sortable_id()
        try:
            store.create(shop.id, VOICE_ITEMS, key, {"message_id": message_id},
                         expires_at=now + ITEM_DAYS * 86400)  # fmt: skip
        except AlreadyExistsError:
            found = store.get(shop.id, VOICE_ITEMS, key)
            message_id = str(found.data["message_id"]) if found is not None else message_id
        lang = self._language(shop, conversation) if role == "assistant" else None
        message = Message(id=message_id, role=role, text=text, at=now, voice=True, lang=lang)
        # Create-only: a second post of the line changes nothing, even if the first was edited.
        conversations.add_message_once(store, shop.id, conversation.id, message, channel="web")

        def with_line(current: Conversation) -> Conversation:
            if any(m.id == message.id for m in current.recent):
                return current
            update: dict[str, Any] = {"recent": conversations.appended(current.recent, [message])}
            if role == "user":
                update["last_inbound_at"] = max(now, current.last_inbound_at or 0.0)
                # The consolidator's mark, as a chat turn sets it (shared/conversations.py).
                update["memory_pending_at"] = current.memory_pending_at or now
            return current.model_copy(update=update)

        conversations.update(store, shop.id, conversation.id, with_line)
        return message

    def _shown(self, shop: Shop, conversation: Conversation) -> list[Product]:
        """The products the conversation's recent replies showed: an order or a payment link
        may name one without searching again (the price guard knows their prices)."""
        ids = [s.id for m in conversation.recent for s in m.products or []]
        docs = self.chat.store.get_many(shop.id, "products", list(dict.fromkeys(ids)))
        return [Product.from_doc(doc) for doc in docs.values()]

    def _conversation(self, shop: Shop, session_id: str) -> Conversation:
        conversation = (
            conversations.get(self.chat.store, shop.id, session_id)
            if is_session_id(session_id)
            else None
        )
        if conversation is None or conversation.channel != "web":
            raise UnknownSessionError("unknown session")
        return conversation

    def _language(self, shop: Shop, conversation: Conversation) -> str:
        said = [m.text for m in reversed(conversation.recent) if m.role == "user"]
        return detect_language(said[0] if said else "", shop, said[1:])

    def _key(self, voice: VoiceSettings) -> str | None:
        secret = (
            self.settings.gemini_api_key
            if voice.provider == "gemini"
            else self.settings.openai_api_key
        )
        return secret.get_secret_value() if secret is not None else None

    def _openai(
        self,
        voice: VoiceSettings,
        key: str,
        session_id: str,
        instructions: str,
        tools: list[Any],
        lang: str,
    ) -> VoiceSession:
        base = self.settings.voice_api_base.rstrip("/")
        body = {
            "expires_after": {"anchor": "created_at", "seconds": SECRET_SECONDS},
            "session": {
                "type": "realtime",
                "model": voice.model,
                "instructions": instructions,
                "audio": {
                    # The customer's words as text too: the transcript the conversation keeps.
                    "input": {
                        "transcription": {"model": "gpt-4o-mini-transcribe", "language": lang}
                    },
                    "output": {"voice": voice.voice},
                },
                "tools": [
                    {
                        "type": "function",
                        "name": spec.name,
                        "description": spec.description,
                        "parameters": spec.parameters,
                    }
                    for spec in tools
                ],
                "tool_choice": "auto",
            },
        }
        answer = self._post(
            f"{base}/v1/realtime/client_secrets", body, {"Authorization": f"Bearer {key}"}
        )
        value, expires_at = answer.get("value"), answer.get("expires_at")
        if not isinstance(value, str) or not isinstance(expires_at, int | float):
            raise VoiceProviderError("the provider's answer has no client secret")
        return VoiceSession(
            "openai", value, float(expires_at), f"{base}/v1/realtime/calls",
            voice.model, voice.voice, session_id,
        )  # fmt: skip

    def _gemini(
        self,
        voice: VoiceSettings,
        key: str,
        session_id: str,
        instructions: str,
        tools: list[Any],
        lang: str,
    ) -> VoiceSession:
        """Gemini Live's ephemeral token (``POST /v1alpha/auth_tokens``), locked to the session's
        setup: one use, to open the call within SECRET_SECONDS. The browser opens a WebSocket
        (Gemini Live speaks no WebRTC) on ``url`` with ``access_token=<the secret>``."""
        base = self.settings.voice_gemini_api_base.rstrip("/")
        now = self.chat.clock()
        model = voice.model if voice.model.startswith("models/") else f"models/{voice.model}"
        body = {
            "uses": 1,
            "expireTime": _rfc3339(now + 30 * 60),  # the call's own limit
            "newSessionExpireTime": _rfc3339(now + SECRET_SECONDS),
            "bidiGenerateContentSetup": {
                "model": model,
                "generationConfig": {
                    "responseModalities": ["AUDIO"],
                    "speechConfig": {
                        "languageCode": lang,
                        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice.voice}},
                    },
                },
                "systemInstruction": {"parts": [{"text": instructions}]},
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": spec.name,
                                "description": spec.description,
                                "parameters": spec.parameters,
                            }
                            for spec in tools
                        ]
                    }
                ],
                "inputAudioTranscription": {},
                "outputAudioTranscription": {},
            },
        }
        answer = self._post(f"{base}/v1alpha/auth_tokens", body, {"x-goog-api-key": key})
        token = answer.get("name")
        if not isinstance(token, str) or not token:
            raise VoiceProviderError("the provider's answer has no token")
        socket = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        url = (
            f"{socket}/ws/google.ai.generativelanguage.v1alpha.GenerativeService"
            ".BidiGenerateContentConstrained"
        )
        # The model as the socket's first message names it (``{"setup": {"model"}}``).
        return VoiceSession(
            "gemini", token, now + SECRET_SECONDS, url, model, voice.voice, session_id
        )

    def _post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """The provider's JSON answer; its failures as VoiceProviderError (its status only in
        the log: never the key, never its words)."""
        import httpx

        try:
            response = self.client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:  # refused, reset, timed out: its type, never its text
            log_event("voice_provider", outcome="unreachable", error=type(exc).__name__)
            raise VoiceProviderError("the voice provider could not be reached") from None
        if response.status_code == 429:
            log_event("voice_provider", outcome="busy", status=429)
            wait = response.headers.get("retry-after", "")
            retry_after = int(wait) if wait.isdigit() else BUSY_RETRY_AFTER
            raise VoiceProviderBusyError("the voice provider is busy", retry_after)
        if not response.is_success:
            log_event("voice_provider", outcome="refused", status=response.status_code)
            raise VoiceProviderError(f"the voice provider answered {response.status_code}")
        try:
            answer = jsonsafe.loads(response.content)
        except InvalidInputError:
            answer = None
        if not isinstance(answer, dict):
            raise VoiceProviderError("the voice provider's answer is not a JSON object")
        return answer


def _guarded(value: Any, facts: PriceFacts, lang: str, currency: str) -> Any:
    """A tool's output as the call may speak it: each amount also written out the way the chat
    writes it (``price_text``, ``total_text``..., in the currency of the product or order it
    belongs to), and any text stating an amount that is not a catalogue price withheld (a
    description quoting an old price)."""
    if isinstance(value, dict):
        own = value.get("currency")
        currency = own if isinstance(own, str) else currency
        out = {k: _guarded(v, facts, lang, currency) for k, v in value.items()}
        for key in MONEY_KEYS:
            amount = value.get(key)
            if isinstance(amount, int | float) and not isinstance(amount, bool):
                out[f"{key}_text"] = format_price(Decimal(str(amount)), currency, lang)
        return out
    if isinstance(value, list):
        return [_guarded(v, facts, lang, currency) for v in value]
    if isinstance(value, str) and facts.problems(value):
        return WITHHELD
    return value


def _rfc3339(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
