"""The operator console's API, ``/admin/api/...`` (``shared/admin``: each area registers its
routes; every route works in the signed-in operator's shop only).

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``admin`` (functions-framework).
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
from shared.admin import areas
from shared.http import HTTPFunction
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter

handler = HTTPFunction("admin", "/admin/api")
for area in areas():
    area.register(handler)

lambda_handler = lambda_adapter(handler)
admin = gcf_adapter(handler)
