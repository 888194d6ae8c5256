"""The console's errors; ``shared.http`` maps each to its response."""

from __future__ import annotations

from shared.exceptions import ComptoirError


class AdminError(ComptoirError):
    """Base of the console's errors."""


class NotSignedInError(AdminError):
    """No valid session: none, forged, expired or signed out (401)."""


class CSRFError(AdminError):
    """A write without the session's CSRF token (403)."""


class InvalidCredentialsError(AdminError):
    """Wrong e-mail, password or sign-in link (401); the message never says which."""


class ConsoleOffError(AdminError):
    """ADMIN_SESSION_SECRET is not set: no session can be signed (503)."""


class UnknownRecordError(AdminError):
    """An id that names nothing in the operator's shop, another shop's ids included (404)."""


class ConflictError(AdminError):
    """What the records are now refuses the action (409): an id already taken, a campaign
    launched while its run is not done, a disabled campaign or job started by hand."""


class InvalidMoveError(ConflictError):
    """An order status change its pipeline does not allow from the status it is in now (409)."""


class WindowClosedError(ConflictError):
    """A reply to a WhatsApp customer who last wrote more than 24 hours ago, and the shop has no
    approved template to send instead (409 ``window_closed``)."""
