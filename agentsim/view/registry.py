"""Family views: each family names its view in its registration (`Family.view`, "module:function"), as it names
its analyses, so a new family adds its view without touching the viewer.

A view is `build(ctx: agentsim.view.panels.ViewContext) -> Panel object`. It reads the run through `ctx.data`
(RunData: DuckDB over the snapshot; aggregate or cap in the query) and the family's analysis functions
(agentsim/analysis/*.py: the viewer shows their tables, it does not recompute them), and follows the scrubber with
`ctx.live(fn)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentsim.core.family import resolve
from agentsim.core.registry import UnknownFamilyError, get_family


def family_view(kind: str) -> Callable[[Any], Any] | None:
    """The view builder of family `kind`; None for a family without a view, or a run of a family not installed."""
    try:
        family = get_family(kind)
    except UnknownFamilyError:
        return None
    return resolve(family.view) if family.view is not None else None
