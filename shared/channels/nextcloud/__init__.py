"""Nextcloud Talk bots (Nextcloud 27.1+): ``sender`` (the bot API's signed messages),
``inbound`` (the webhook's signature, allowed servers and replay checks, and its handling),
``models`` (the Activity Streams post, typed). Nothing is imported here: the registry in
``shared.channels`` loads each part when it is used."""
