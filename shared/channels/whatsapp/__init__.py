"""WhatsApp Cloud API: ``sender`` (the Graph API), ``inbound`` (the webhook's checks and
handling), ``models`` (the webhook payload, typed). Nothing is imported here: the registry in
``shared.channels`` loads each part when it is used."""
