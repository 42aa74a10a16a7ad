"""What keeps the local web app to its user: a token on every request, Host and Origin checks, a size limit.

The server binds to 127.0.0.1 by default, but any web page the user opens could still send requests to it,
and a DNS-rebinding page can even read the answers. So every request and WebSocket must carry the random
token the command printed (``?token=`` or the ``X-Token`` header; a page from elsewhere cannot know it),
the ``Host`` header must name this server (a rebound name does not), and an ``Origin`` header, when the
browser sends one (every WebSocket and cross-site request), must be this server's own. A request body
larger than the upload limit is refused before it is read, and counted while it is read when its length
is not announced. Refusals: 401 (token), 400 (Host), 403 (Origin), 413 (size).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import parse_qs

TOKEN_HEADER = b"x-token"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The ``Host`` values a browser sends to this server (None: any, for a server bound to every interface)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {host, "127.0.0.1", "localhost", "[::1]"} if host in ("127.0.0.1", "localhost", "::1") else {host}
    return {f"{name}:{port}" for name in names}


class TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: refuse what did not come from the page this server gave its user."""

    def __init__(self, app, token: str, hosts: set[str] | None, max_body: int):
        self.app, self.token, self.hosts, self.max_body = app, token, hosts, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        problem = self._problem(scope, headers)
        if problem is not None:
            return await _refuse(scope, receive, send, *problem)
        length = headers.get(b"content-length")
        if scope["type"] == "http" and length is not None and length.isdigit() and int(length) > self.max_body:
            return await _refuse(scope, receive, send, 413, f"the upload is larger than the limit of "
                                 f"{self.max_body // 1_000_000} MB; restart with --max-upload-mb to raise it")
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        counted = 0

        async def counting_receive():
            nonlocal counted
            message = await receive()
            if message["type"] == "http.request":
                counted += len(message.get("body", b""))
                if counted > self.max_body:
                    raise TooLarge()
            return message

        try:
            await self.app(scope, counting_receive, send)
        except TooLarge:
            await _respond(send, 413, "the upload is larger than the limit; restart with --max-upload-mb to raise it")

    def _problem(self, scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        host = headers.get(b"host", b"").decode("latin-1")
        if self.hosts is not None and host not in self.hosts:
            return 400, "unknown Host header: open the address realtime-split ui printed"
        origin = headers.get(b"origin")
        if origin is not None and origin.decode("latin-1") not in (f"http://{host}", f"https://{host}"):
            return 403, "requests from another site are refused"
        given = _token(scope, headers)
        if given is None or not secrets.compare_digest(given, self.token):
            return 401, "missing or wrong token: open the address (with ?token=...) realtime-split ui printed"
        return None


def _token(scope, headers: dict[bytes, bytes]) -> str | None:
    if TOKEN_HEADER in headers:
        return headers[TOKEN_HEADER].decode("latin-1")
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values: Iterable[str] = query.get("token", [])
    return next(iter(values), None)


async def _refuse(scope, receive, send, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    await _respond(send, status, message)


async def _respond(send, status: int, message: str) -> None:
    body = message.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
