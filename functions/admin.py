"""The operator console's API, ``/admin/api/...`` (``shared/admin``: each area registers its
routes; every route works in the signed-in operator's shop only).

Targets: ``handler`` (neutral), ``lambda_handler`` (AWS), ``admin`` (functions-framework).
On Google Cloud the function also serves the console's files (``web/dist/admin``, copied into
its source by infra/gcp/deploy.py) under ``/admin/``: one origin with the API. On AWS,
CloudFront serves them from the widget bucket.
"""

from __future__ import annotations

from . import _path  # noqa: F401  (first: `functions-framework --source=` needs it)

# isort: split
from pathlib import Path

from shared.admin import areas
from shared.http import HTTPFunction
from shared.http.aws import lambda_adapter
from shared.http.gcf import gcf_adapter
from shared.http.static import with_static_files

# The console's build, where node web/build.mjs writes it and where the Google Cloud source
# folder holds it.
CONSOLE_DIR = Path(__file__).resolve().parent.parent / "web" / "dist" / "admin"

handler = HTTPFunction("admin", "/admin/api")
for area in areas():
    area.register(handler)

lambda_handler = lambda_adapter(handler)
admin = gcf_adapter(with_static_files(handler, CONSOLE_DIR, "/admin/"))
