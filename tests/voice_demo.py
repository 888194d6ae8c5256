"""``make voice-demo``: a customer's WhatsApp voice note answered in text, then in voice, all on
this machine, as the worker does it deployed.

The loopback Graph API (``tests/fixtures/graph_server.py``) stands for WhatsApp and the speech
stub (``tests/fixtures/speech_server.py``) for OpenAI: it transcribes any voice note as
``HEARD`` and speaks replies as a tone in a real OGG/Opus file. The demo shop answers on a
temporary SQLite store with the offline model (the stub only transcribes, through
LLM_FALLBACKS). The voice note sent back is written to ``.data/voice-demo-reply.ogg``;
``TTS_PROVIDER=offline make voice-demo`` has espeak-ng say the reply instead of the tone.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from functions import webhook_whatsapp
from shared.app import App, use_app
from shared.catalog import importer
from shared.http import Request
from shared.queue.inprocess import InProcessQueue
from shared.settings import Settings
from shared.speech.ogg import opus_duration
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN, signature
from tests.eventlib import load_event
from tests.fixtures.graph_server import TOKEN, VERSION, GraphServer, _graph_handler
from tests.fixtures.speech_server import API_KEY, HEARD, SpeechServer, _handler, tone_ogg
from tests.loopback import serving

SHOP = "demo"
OUT = Path(".data/voice-demo-reply.ogg")


def main() -> int:
    graph, speech = GraphServer(), SpeechServer()
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving(_graph_handler(graph), "graph") as graph_http,
        serving(_handler(speech), "speech") as speech_http,
    ):
        graph.base_url = f"{graph_http.root}/{VERSION}"
        app = App(
            Settings.from_env(
                {
                    "STORE_URL": f"sqlite:///{tmp}/demo.db",
                    "CATALOG_BLOB_URL": f"{tmp}/catalog",
                    "MEDIA_BLOB_URL": f"{tmp}/media",
                    "DEFAULT_SHOP": SHOP,
                    "LLM_PROVIDER": "offline",
                    "LLM_FALLBACKS": f"openai@{speech_http.root}/v1",  # its ears only
                    "OPENAI_API_KEY": API_KEY,
                    # TTS_PROVIDER=offline speaks for real where espeak-ng is installed.
                    "TTS_PROVIDER": os.environ.get("TTS_PROVIDER", "openai"),
                    "TTS_API_BASE": speech_http.root,
                    "WHATSAPP_APP_SECRET": APP_SECRET,
                    "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
                    "WHATSAPP_ACCESS_TOKEN": TOKEN,
                    "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
                    "WHATSAPP_API_BASE": graph.base_url,
                },
                env_file=None,
            )
        )
        use_app(app)
        importer.seed_demo(app.store, SHOP)
        event = load_event("whatsapp_voice")
        voice = event["entry"][0]["changes"][0]["value"]["messages"][0]["audio"]
        graph.media[voice["id"]] = (tone_ogg(), "audio/ogg")
        print(f"customer (voice note, heard as): {HEARD}")
        status = _post(event)
        queue = app.queue
        assert isinstance(queue, InProcessQueue)  # QUEUE_URL's default: the worker runs here
        if status != 200 or not queue.drain(timeout=60):
            print(f"the webhook answered {status}, or the worker did not finish", file=sys.stderr)
            return 1
        return _show(graph)


def _post(event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature(body)}
    request = Request("POST", "/webhooks/whatsapp", headers=headers, body=body)
    return webhook_whatsapp.handler(request).status


def _show(graph: GraphServer) -> int:
    spoken = False
    for message in graph.sent:
        if message["type"] == "audio":
            data, _ = graph.media[message["audio"]["id"]]
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_bytes(data)
            print(f"shop (voice note): {opus_duration(data):.1f} s of OGG/Opus, in {OUT}")
            spoken = True
        elif message["type"] == "text":
            print(f"shop (text): {message['text']['body']}")
        else:
            print(f"shop (text, with buttons): {message['interactive']['body']['text']}")
    if not spoken:
        print("no voice note went back: see the log above", file=sys.stderr)
    return 0 if spoken else 1


if __name__ == "__main__":
    sys.exit(main())
