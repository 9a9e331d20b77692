"""The emulator's HTTP server: requests routed without rescanning moto's package on each one, and
connections kept open between requests, as AWS's endpoints keep them (listed in docs/emulator.md).

What a client reads for each request stays the same bytes; what changes is what each request costs
the server (and the client, which no longer reconnects for every request).
"""
from __future__ import annotations

import io
import re
import selectors
import threading

# The characters of a header name, as the email parser (http.client's) recognises a header line.
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+\Z")


def patch_routing() -> None:
    """moto 5.2.5's `DomainDispatcherApplication.get_application` runs, for every request and under
    one process-wide lock, `moto.backends.list_of_moto_modules()` (os.listdir of moto's package
    and an os.path.isdir per entry, about 200) and then up to 183 URL regexes to map the request's
    service host to a backend: 6.4% of the emulator's CPU in the demo, all of it serialised.

    The package listing cannot change while the server runs, and the regex match is a function of
    the host alone, so both are computed once per host. A host that matches no backend is not
    kept, so moto's "Unable to find appropriate backend" message is still printed each time.
    Idempotent."""
    import moto.backends as backends
    from moto.moto_server import werkzeug_app

    dispatcher = werkzeug_app.DomainDispatcherApplication
    if getattr(dispatcher, "_backup_cfn_routing", False):
        return
    modules = tuple(backends.list_of_moto_modules())
    original = dispatcher.get_backend_for_host
    routes: dict[str, str] = {}

    def list_of_moto_modules():
        return iter(modules)

    def get_backend_for_host(self, host):
        backend = routes.get(host) if host is not None else None
        if backend is None:
            backend = original(self, host)
            if backend is not None and host is not None:
                routes[host] = backend
        return backend

    backends.list_of_moto_modules = list_of_moto_modules
    dispatcher.get_backend_for_host = get_backend_for_host
    dispatcher._backup_cfn_routing = True


def patch_keep_alive() -> None:
    """Werkzeug's development server, which moto's `ThreadedMotoServer` runs, answers every request
    with `Connection: close` (werkzeug/serving.py: http.server cannot drain an unread request
    body before reading the next request line), then waits up to 10 ms in a select() to discard
    whatever else the client sends. So every request paid for a new TCP connection on both sides,
    a new server thread (one per connection) and that wait: about 1 ms of the server's CPU per
    request, and the client's reconnect. AWS keeps HTTP/1.1 connections open, and botocore pools
    them.

    The request body (Content-Length bytes) is read off the socket before the application runs,
    and the application gets the same bytes as `wsgi.input`, so the request is consumed whole;
    then, as HTTP/1.1 allows, the connection stays open: `Connection: close` is left out and the
    discard step finds nothing (what follows on the socket is the client's next request).
    Requests with a chunked body, an incomplete body, `Connection: close` or HTTP/1.0 are answered
    exactly as before, and closed. Responses are delimited as before (Content-Length, or chunked
    under HTTP/1.1), so the bytes a client reads for each response do not change. TCP_NODELAY is
    set on each connection: werkzeug writes the status line, headers and body in separate sends,
    and on a kept connection Nagle's algorithm would hold each later one for the client's delayed
    ACK (about 40 ms). Idempotent."""
    import werkzeug.serving as serving
    from moto.moto_server import werkzeug_app

    handler = werkzeug_app.MotoRequestHandler
    if getattr(handler, "_backup_cfn_keep_alive", False):
        return
    original_handle_one_request = handler.handle_one_request
    original_make_environ = handler.make_environ
    original_send_header = handler.send_header
    this_request = threading.local()  # each connection is served by a thread of its own

    def handle_one_request(self):
        this_request.keep = False  # until its body has been read whole (an error answered earlier closes)
        return original_handle_one_request(self)

    def make_environ(self):
        environ = original_make_environ(self)
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() or self.close_connection:
            return environ
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return environ
        if length < 0:
            return environ
        body = self.rfile.read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        this_request.keep = len(body) == length
        return environ

    def send_header(self, keyword, value):
        if (getattr(this_request, "keep", False) and not self.close_connection
                and keyword.lower() == "connection" and str(value).lower() == "close"):
            return  # the connection stays open: the next request starts right after this one's body
        return original_send_header(self, keyword, value)

    handler.handle_one_request = handle_one_request
    handler.make_environ = make_environ
    handler.send_header = send_header
    handler.disable_nagle_algorithm = True
    serving.selectors = _NoLeftoversOnKeptConnections(this_request)
    handler._backup_cfn_keep_alive = True


def patch_request_log() -> None:
    """werkzeug 3.1's request handler formats each request's log line (the path turned to an IRI,
    control characters escaped, ANSI styles, a timestamp) before the `werkzeug` logger decides
    whether to write it. The emulator logs requests only when asked (`serve --access-log`; the
    line costs 6% of its CPU in the demo), so the line is built only when that logger would write
    it at INFO; when it does, the line is the same. Idempotent."""
    import logging

    from moto.moto_server import werkzeug_app

    handler = werkzeug_app.MotoRequestHandler
    if getattr(handler, "_backup_cfn_request_log", False):
        return
    original = handler.log_request
    logger = logging.getLogger("werkzeug")

    def log_request(self, code="-", size="-"):
        if logger.isEnabledFor(logging.INFO):
            original(self, code, size)

    handler.log_request = log_request
    handler._backup_cfn_request_log = True


def patch_header_parsing() -> None:
    """Python 3.11's http.server (under werkzeug's dev server) parses each request's headers with
    the email package's feed parser (`http.client.parse_headers`): a general MIME parser, about 3%
    of the emulator's CPU in the demo. For the header lines HTTP clients send (`Name: value`, one
    line each), the result is simple: each (name, value) in order, the value without the spaces
    or tabs after the colon and without the line end, as the parser's compat32 policy stores it.
    Those are read directly into the same message class; anything else (a continuation line, a
    line without a name or colon, a bare CR) goes to the email parser, so its result and defects
    are the parser's. Idempotent."""
    import http.client

    if getattr(http.client, "_backup_cfn_header_parsing", False):
        return
    original = http.client.parse_headers
    read_lines = http.client._read_headers

    def parse_headers(fp, _class=http.client.HTTPMessage):
        lines = read_lines(fp)
        message = _simple_headers(lines, _class)
        if message is not None:
            return message
        return original(_Replay(lines), _class)

    http.client.parse_headers = parse_headers
    http.client._backup_cfn_header_parsing = True


def _simple_headers(lines: list[bytes], message_class):
    """The message the email parser would make of these header lines (the last is the blank line
    or end of input that ended them), or None when they are not all simple `Name: value` lines."""
    message = message_class()
    for raw in lines[:-1]:
        line = raw.decode("iso-8859-1")
        if line.endswith("\r\n"):
            line = line[:-2]
        elif line.endswith("\n"):
            line = line[:-1]
        else:
            return None
        name, colon, value = line.partition(":")
        if not colon or "\r" in line or "\n" in line or not _HEADER_NAME.match(name):
            return None
        message.set_raw(name, value.lstrip(" \t"))
    if lines and lines[-1] not in (b"\r\n", b"\n", b""):
        return None
    message.set_payload("")  # what the email parser leaves after the headers: no body
    return message


class _Replay:
    """The header lines already read, offered again to http.client's own parser."""

    def __init__(self, lines: list[bytes]):
        self._lines = list(lines)

    def readline(self, limit: int = -1) -> bytes:
        return self._lines.pop(0) if self._lines else b""


class _NothingToDiscard:
    """The selector werkzeug's discard step gets on a kept connection: nothing is waiting."""

    def register(self, *args, **kwargs) -> None:
        return None

    def select(self, timeout=None) -> list:
        return []

    def close(self) -> None:
        return None


class _NoLeftoversOnKeptConnections:
    """`werkzeug.serving.selectors`, except that on a kept connection the discard step's selector
    finds nothing (the body was read whole; the bytes after it are the next request)."""

    def __init__(self, this_request: threading.local):
        self._this_request = this_request

    def __getattr__(self, name):
        return getattr(selectors, name)

    def DefaultSelector(self):  # noqa: N802 - the name werkzeug calls
        if getattr(self._this_request, "keep", False):
            return _NothingToDiscard()
        return selectors.DefaultSelector()
