"""What a queued WorkItem does, by kind: one place where work kinds are registered.

Each handler is imported only when an item of its kind arrives (cold start).
"""

from __future__ import annotations

HANDLERS: dict[str, str] = {
    "channel_turn": "shared.channels.turn:handle",  # answer a WhatsApp/Telegram conversation
}
