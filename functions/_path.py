"""Puts the repository root on ``sys.path`` when a function is loaded from its file alone.

``functions-framework --source=functions/chat.py --target=chat`` imports ``chat.py`` as a
top-level module whose package is its own folder, so ``shared`` (beside ``functions/``) cannot be
found. Each function imports this module first (``from . import _path``), which works both ways:
as ``chat._path`` there, as ``functions._path`` when ``functions`` is a package (Lambda, the dev
server, the tests, the Google Cloud build), where the root is already importable.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.append(ROOT)
