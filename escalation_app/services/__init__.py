"""Side effects that run after a handoff commits. Best-effort: they never raise into a click."""
