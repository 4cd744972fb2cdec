"""A plain HTML form that the browser submits itself (no Reflex event).

Reflex's own form always cancels the browser's submit and sends an event over the
websocket; sign-in and sign-out must reach the backend as real HTTP POSTs instead, so
the answer can set or clear the HttpOnly cookie.
"""

from __future__ import annotations

from reflex_base.vars.base import Var
from reflex_components_core.el.elements.base import BaseHTML


class PostForm(BaseHTML):
    """`<form method="post" action=...>` submitted by the browser."""

    tag = "form"

    action: Var[str]
    method: Var[str]


def post_form(*children, action, **props) -> PostForm:
    """A form posting its fields to `action`."""
    return PostForm.create(*children, action=action, method="post", **props)
