"""The tools the assistant may call, by name. Adding a tool: write its module, list it here."""

from __future__ import annotations

from shared.llm import ToolSpec
from shared.tools.base import Tool
from shared.tools.capture_lead import CaptureLead
from shared.tools.create_payment_link import CreatePaymentLink
from shared.tools.get_product import GetProduct
from shared.tools.link_account import LinkAccount, VerifyLink
from shared.tools.recall import Recall
from shared.tools.remember import Remember
from shared.tools.reminders import CancelReminder, ListReminders, ScheduleReminder
from shared.tools.request_human import RequestHuman
from shared.tools.search_products import SearchProducts
from shared.tools.web_search import WebSearch

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in [
        SearchProducts(),
        GetProduct(),
        CaptureLead(),
        CreatePaymentLink(),
        RequestHuman(),
        Remember(),
        Recall(),
        LinkAccount(),
        VerifyLink(),
        ScheduleReminder(),
        ListReminders(),
        CancelReminder(),
        WebSearch(),
    ]
}


def tool_specs() -> list[ToolSpec]:
    return [tool.spec for tool in TOOLS.values()]
