"""The floor: a bare python-socketio server that commits one PostgreSQL row, then broadcasts.

Served by granian (the ASGI server Reflex itself runs on) as `bench.floor:app`, with
BENCH_FLOOR_DSN set; the bench starts it and kills its process group. A client that
emits `go` {"size": S} makes the server take a timestamp, insert a row, commit, take
the commit time, and broadcast {"t_stamp", "t_commit", "pad"} (about S bytes of JSON) to
every other client. `t_stamp` is taken where the app stamps a handoff's `created_at`
(inside the transaction, before its INSERT), so latencies from it compare like for like. This
is the best this machine can do for "commit, then tell N websocket tabs": the same
PostgreSQL, socket.io protocol, ASGI server and client stack as the app, and no state
machinery.
"""

from __future__ import annotations

import os
import time

import psycopg
import socketio

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[])
app = socketio.ASGIApp(sio)
_conn: dict = {}


async def _db() -> psycopg.AsyncConnection:
    if "c" not in _conn:
        dsn = os.environ["BENCH_FLOOR_DSN"].replace("postgresql+psycopg://", "postgresql://")
        _conn["c"] = await psycopg.AsyncConnection.connect(dsn)
        async with _conn["c"].cursor() as cur:
            await cur.execute(
                "CREATE TABLE IF NOT EXISTS bench_floor (id serial PRIMARY KEY, "
                "created_at timestamptz NOT NULL DEFAULT now(), note text)"
            )
        await _conn["c"].commit()
    return _conn["c"]


@sio.event
async def connect(sid, environ, auth=None):
    await sio.enter_room(sid, "all")


@sio.event
async def go(sid, data):
    c = await _db()
    t_stamp = time.time()
    async with c.cursor() as cur:
        await cur.execute("INSERT INTO bench_floor (note) VALUES (%s)", ("arrival",))
    await c.commit()
    t_commit = time.time()
    size = int(data.get("size", 100))
    payload = {
        "t_stamp": t_stamp,
        "t_commit": t_commit,
        "round": data.get("round"),
        "pad": "x" * max(0, size - 80),
    }
    await sio.emit("update", payload, room="all", skip_sid=sid)
    return {"t_stamp": t_stamp, "t_commit": t_commit}
