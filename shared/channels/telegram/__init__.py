"""Telegram Bot API: ``sender`` (the Bot API), ``inbound`` (the webhook's checks and handling),
``models`` (the ``Update``, typed). Nothing is imported here: the registry in
``shared.channels`` loads each part when it is used."""
