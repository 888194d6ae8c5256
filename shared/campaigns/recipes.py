"""Built-in campaigns: what a shop most often wants, as defaults a campaign file may override.

* ``abandoned_order`` (``hours``, 2): an order confirmed (or with a payment link out) and not
  paid after ``hours``; at most one reminder per order.
* ``win_back`` (``days``, 60): customers who ordered before but not in ``days``; once each.
* ``back_in_stock``: customers who saw or ordered a product that an import made available again
  since; once per customer, product and restock. Hourly unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.exceptions import InvalidInputError

Recipe = Callable[[Mapping[str, Any]], dict[str, Any]]


def _in_language(fr: str, en: str) -> str:
    return f"{{% if lang == 'en' %}}{en}{{% else %}}{fr}{{% endif %}}"


def abandoned_order(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "segment": {
            "order_status": ["confirmed", "awaiting_payment"],
            "order_idle_hours": float(options.get("hours", 2)),
        },
        "repeat": "order",
        "message": {
            "brief": _in_language(
                "Bonjour {{ customer.first_name }}, votre commande {{ order.product }} "
                "({{ order.total }}) vous attend toujours. "
                "Répondez à ce message pour la finaliser.",
                "Hello {{ customer.first_name }}, your order {{ order.product }} "
                "({{ order.total }}) is still waiting for you. "
                "Reply to this message to complete it.",
            )
        },
    }


def win_back(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "segment": {"no_order_days": int(options.get("days", 60))},
        "repeat": "once",
        "message": {
            "brief": _in_language(
                "Bonjour {{ customer.first_name }}, cela fait longtemps ! Découvrez les "
                "nouveautés de {{ shop.name }}{% if shop.url %} : {{ shop.url }}{% endif %}.",
                "Hello {{ customer.first_name }}, it has been a while! See what is new at "
                "{{ shop.name }}{% if shop.url %}: {{ shop.url }}{% endif %}.",
            )
        },
    }


def back_in_stock(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "segment": {"restocked": True},
        "repeat": "once",
        "schedule": {"cron": "0 * * * *"},
        "message": {
            "brief": _in_language(
                "Bonne nouvelle {{ customer.first_name }} : {{ product.title }} est de nouveau "
                "disponible ({{ product.price }})."
                "{% if product.url %} {{ product.url }}{% endif %}",
                "Good news {{ customer.first_name }}: {{ product.title }} is back in stock "
                "({{ product.price }}).{% if product.url %} {{ product.url }}{% endif %}",
            )
        },
    }


RECIPES: dict[str, Recipe] = {
    "abandoned_order": abandoned_order,
    "win_back": win_back,
    "back_in_stock": back_in_stock,
}


def recipe_defaults(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    recipe = RECIPES.get(name)
    if recipe is None:
        raise InvalidInputError(f"unknown recipe {name!r} (known: {', '.join(RECIPES)})")
    return recipe(options)
