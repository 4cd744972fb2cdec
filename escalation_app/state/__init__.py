"""Reflex state: resolve the signed-in user, call the domain, hold what pages show."""

from escalation_app.services import realtime
from escalation_app.state.bell import BellState
from escalation_app.state.handoff import HandoffState
from escalation_app.state.queue import QueueState

# The live pushes update these states' vars; services never import the state layer.
realtime.bind_views(queue=QueueState, bell=BellState, handoff=HandoffState)
