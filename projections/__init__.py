"""Read models derived from the log, the inline hook that keeps them current, and replay."""

from projections.inline import INLINE_PROJECTIONS, InlineProjections
from projections.replay import ReplayReport, ensure_projections, replay

__all__ = ["INLINE_PROJECTIONS", "InlineProjections", "ReplayReport", "ensure_projections", "replay"]
