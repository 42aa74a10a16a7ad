"""``realtime-split ui``: start the local web app (realtime_split/web/) and open it in the browser; a thin adapter.

It picks a free port on 127.0.0.1, makes a random token, prints the address with the token and opens it
(``--no-browser``: only prints), and serves until Ctrl-C (or SIGTERM), which stops the live session and
finishes the file being separated like Ctrl-C in the command line. Uploads (and the stems, unless
``--output`` names a folder to keep them in) live in a temporary folder removed at exit.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import webbrowser
from pathlib import Path

from .cli import _Parser
from .errors import UserError

MB = 1_000_000


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="realtime-split ui",
                description="Separate files and mix live sessions from a page in your browser (a local web app). "
                            "Needs the ui extra: pip install 'realtime-split[ui]'.",
                epilog="examples:\n"
                       "  realtime-split ui                        # opens the page in your browser\n"
                       "  realtime-split ui --no-browser --port 8765\n"
                       "  realtime-split ui --allow-paths ~/Music  # the page may open files typed under ~/Music",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default: 127.0.0.1, this computer only); 0.0.0.0 lets other "
                        "computers in (they still need the token)")
    p.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="only print the address; do not open a browser")
    p.add_argument("--max-upload-mb", type=float, default=500, metavar="MB",
                   help="the largest upload accepted, in MB (default: 500)")
    p.add_argument("--allow-paths", action="append", default=[], metavar="DIR",
                   help="a folder whose files the page may name by path (repeatable); without it, only uploads")
    p.add_argument("--output", metavar="DIR",
                   help="keep the stems in DIR/job-N/ (default: a temporary folder removed at exit)")
    p.add_argument("--model", metavar="NAME|PATH", help="the model the page offers first (default: the bundled ones)")
    return p


def free_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); pick another "
                        "--port, or leave it out for a free one") from None
    sock.listen(64)
    return sock


def main(argv: list[str]) -> int:
    """``realtime-split ui ...`` (``cli.main`` hands over when the first argument is ``ui``)."""
    args = build_parser().parse_args(argv)
    try:
        import uvicorn

        from .web.app import Settings, create_app
        from .web.security import allowed_hosts, new_token
    except ImportError as exc:
        raise UserError(f"realtime-split ui needs the ui extra ({exc.name} is missing): "
                        "pip install 'realtime-split[ui]'") from None
    if args.max_upload_mb <= 0:
        raise UserError(f"--max-upload-mb {args.max_upload_mb:g}: give a size in MB above 0, e.g. 2000")
    folders = []
    for text in args.allow_paths:
        folder = Path(text).expanduser().resolve()
        if not folder.is_dir():
            raise UserError(f"--allow-paths {text}: not a folder; name a folder whose files the page may open")
        folders.append(folder)
    if args.model:
        from .registry import resolve_model

        resolve_model(args.model)  # a bad model fails here, in one line, not on the page
    if args.host in ("0.0.0.0", "::"):
        print(f"realtime-split ui: warning: --host {args.host} serves every network this computer is on; anyone "
              "there with the address and its token can use the page", file=sys.stderr)
    sock = free_socket(args.host, args.port)
    port = sock.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="realtime-split-ui-"))
    try:
        token = new_token()
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        settings = Settings(root=root, token=token, host=args.host, port=port, hosts=allowed_hosts(args.host, port),
                            max_upload=int(args.max_upload_mb * MB), allow_paths=folders,
                            output=Path(args.output).expanduser().resolve() if args.output else None,
                            model=args.model)
        app = create_app(settings)
        url = f"http://{shown}:{port}/?token={token}"
        print(f"realtime-split ui: open {url}  (Ctrl-C stops the server)", flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_ping_interval=None,
                                               timeout_graceful_shutdown=5, lifespan="on"))
        server.run(sockets=[sock])
    finally:
        sock.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0
