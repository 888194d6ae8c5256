"""The health of one shop's backends and providers, as the operator console shows it: the
store (a read), the queue, the LLM chain, each channel and the payment provider, each
``{"ok", "detail"}``. Only the store is called; the rest is whether each is configured (their
keys present), which is what a shop owner can act on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from shared.exceptions import StoreUnavailableError

if TYPE_CHECKING:
    from shared.app import App
    from shared.models import Shop
    from shared.settings import Settings

Check = dict[str, Any]


def shop_health(app: App, shop: Shop) -> dict[str, Any]:
    return {
        "store": store_check(app),
        "queue": queue_check(app.settings),
        "llm": llm_check(app, shop),
        "channels": {
            "web": _check(True, "the widget"),
            "whatsapp": whatsapp_check(app.settings, shop),
            "telegram": telegram_check(app.settings, shop),
        },
        "payments": payments_check(app, shop),
    }


def _check(ok: bool, detail: str) -> Check:
    return {"ok": ok, "detail": detail}


def _missing(settings: Settings, *variables: str) -> list[str]:
    """Those of ``variables`` (settings' aliases) with no value."""
    fields = {f.alias: name for name, f in type(settings).model_fields.items()}
    missing = []
    for variable in variables:
        field = fields.get(variable)
        value = getattr(settings, field) if field else None
        if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
            missing.append(variable)
    return missing


def _unset(missing: list[str]) -> Check:
    return _check(False, f"set {', '.join(missing)}")


def store_check(app: App) -> Check:
    try:
        app.store.ping()
    except StoreUnavailableError:
        return _check(False, f"{app.store_backend}: unreachable")
    return _check(True, app.store_backend)


def queue_check(settings: Settings) -> Check:
    scheme = settings.queue_url.split(":", 1)[0]
    if scheme == "inprocess":
        return _check(True, "in-process: the worker runs in the function that queues")
    return _check(True, scheme)


def llm_check(app: App, shop: Shop) -> Check:
    provider = shop.llm_provider or app.settings.llm_provider
    own_model = shop.llm_model or (app.settings.llm_model if not shop.llm_provider else "")
    named = f"{provider} ({own_model})" if own_model else provider
    missing = app.llm_misconfigured(shop)
    if missing:
        keys = ", ".join(f"{variable} for {name}" for name, variable in missing)
        return _check(False, f"{named}: set {keys}")
    return _check(True, named)


def whatsapp_check(settings: Settings, shop: Shop) -> Check:
    # DEFAULT_SHOP's number is the settings'; another shop's is its own (a route to it).
    number = shop.whatsapp_phone_number_id or (
        settings.whatsapp_phone_number_id if shop.id == settings.default_shop else None
    )
    if number is None:
        return _check(False, "no WhatsApp number for this shop")
    missing = _missing(settings, "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET")
    return _unset(missing) if missing else _check(True, "configured")


def telegram_check(settings: Settings, shop: Shop) -> Check:
    if shop.id != settings.default_shop:
        return _check(False, "the Telegram bot answers for DEFAULT_SHOP only")
    missing = _missing(settings, "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET")
    return _unset(missing) if missing else _check(True, "configured")


def payments_check(app: App, shop: Shop) -> Check:
    from shared.exceptions import ComptoirError

    name = shop.payment_provider
    try:
        app.payments.provider(name)  # refuses the test provider's public secret when deployed
    except ComptoirError as exc:
        return _check(False, f"{name}: {exc}")
    if name == "test":
        return _check(True, "test: the dev server's checkout page, nothing is paid")
    # Each HTTP provider reads <NAME>_API_KEY and <NAME>_WEBHOOK_SECRET (HTTPProvider).
    missing = _missing(app.settings, f"{name.upper()}_API_KEY", f"{name.upper()}_WEBHOOK_SECRET")
    return _unset(missing) if missing else _check(True, name)
