from __future__ import annotations

import sys

from shared.cli import main

sys.exit(main())
