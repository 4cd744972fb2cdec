"""The production server: `reflex run`, with a backend worker that dies started again.

    python -m escalation_app.serve --env prod --frontend-port 3000 --backend-port 3000

Takes exactly `reflex run`'s options and runs Reflex's own `run` command (same build,
same app, same `GRANIAN_WORKERS`). The one difference: Reflex 0.10 builds its granian
server without `respawn_failed_workers` and reads no setting for it, so one worker's
death (out of memory, a crash, a kill) stops the whole server. Here granian's server
class respawns a worker that exits unexpectedly. Granian still gives up on a crash loop
(the same worker dying again within 5.5 s of its respawn); `deploy/escalation-desk.service`
restarts the whole server then. See docs/decisions/0009-worker-respawn.md.
"""

from __future__ import annotations

import sys

import granian.server

RESPAWN_INTERVAL_SECONDS = 1.0


def _respawning(server_class: type) -> type:
    class RespawningServer(server_class):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("respawn_failed_workers", True)
            kwargs.setdefault("respawn_interval", RESPAWN_INTERVAL_SECONDS)
            super().__init__(*args, **kwargs)

    RespawningServer.__name__ = RespawningServer.__qualname__ = f"Respawning{server_class.__name__}"
    return RespawningServer


def main(argv: list[str] | None = None) -> None:
    """Run `reflex run <argv>` with granian respawning failed workers."""
    # Reflex imports `granian.server.Server` when it starts the backend, after this.
    granian.server.Server = _respawning(granian.server.Server)
    from reflex.reflex import cli

    cli(["run", *(sys.argv[1:] if argv is None else argv)], prog_name="python -m escalation_app.serve")


if __name__ == "__main__":
    main()
