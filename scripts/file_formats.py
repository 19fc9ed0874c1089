"""Regenerate README's "Names" and "File formats" sections from the families' row models.

    python scripts/file_formats.py          # rewrite README.md
    python scripts/file_formats.py --check  # exit 1 when README.md is out of date (tests/test_file_formats.py does this)
"""

from __future__ import annotations

import sys
from pathlib import Path

from agentsim.core.datafile import update_readme

README = Path(__file__).resolve().parents[1] / "README.md"

if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(0 if update_readme(README, check=True) else 1)
    update_readme(README)
