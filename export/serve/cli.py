"""``graphcap serve PATH``: serve ONNX models and pipeline folders over HTTP.

``add_serve_parser(subparsers)`` adds the subcommand to the ``graphcap`` command; nothing
here imports the serving stack (Starlette, uvicorn) until the command runs, and then a
missing one is named with the extra that installs it: ``pip install 'graphcap[serve]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from runtime.ort_backend import parse_device

EXTRA = "pip install 'graphcap[serve]'"
USAGE, FAILED = 2, 1

_EPILOG = """\
examples:
  graphcap serve runs/demo                      a pipeline folder, on http://127.0.0.1:8000
  graphcap serve models/ --port 9000            every .onnx file and pipeline folder in models/
  graphcap serve model.onnx --max-batch-size 1  no dynamic batching
  curl -s localhost:8000/v1/models/demo:predict -d '{"instances": ["a great film"]}'

Protocols: the KServe / Triton v2 inference protocol (/v2/health/ready,
/v2/models/NAME, /v2/models/NAME/infer with typed tensors, BYTES for texts; tritonclient's
HTTP client works), POST /v1/models/NAME:predict with {"instances": [texts]} for pipelines,
Prometheus metrics at /metrics, OpenAPI at /openapi.json, and a page at / to try a pipeline.
Concurrent requests are batched (--max-batch-size, --max-queue-delay-ms). Changed model files
are reloaded while serving (--reload-interval); a version that does not load completely is
refused and the previous one keeps serving. SIGINT or SIGTERM stops the server after the
requests in flight are answered (--graceful-timeout). Needs: pip install 'graphcap[serve]'.
"""


def add_serve_parser(sub: Any) -> None:
    """Add ``serve`` to the ``graphcap`` command's subparsers."""
    p = sub.add_parser(
        "serve",
        help="serve .onnx files and pipeline folders over HTTP (KServe/Triton v2 protocol)",
        description="Serve .onnx files and pipeline folders over HTTP: the KServe/Triton v2 "
        "inference protocol, :predict for texts, dynamic batching, metrics.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "path", metavar="PATH", help="an .onnx file, a pipeline folder, or a folder of them"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000; 0 picks a free one)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--threads", type=_positive_int, help="onnxruntime threads per model")
    p.add_argument(
        "--spinning",
        action="store_true",
        help="let onnxruntime's idle threads spin-wait (its default; off here, which leaves "
        "the cores to request handling)",
    )
    p.add_argument(
        "--max-batch-size",
        type=_positive_int,
        default=32,
        help="most texts (rows) per batch; 1 turns batching off (32)",
    )
    p.add_argument(
        "--max-queue-delay-ms",
        type=_non_negative,
        default=0.0,
        help="how long a batch that is not full waits for more requests (0 ms)",
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help="seconds a request may take before a 504 (30)",
    )
    p.add_argument(
        "--max-request-bytes",
        type=_positive_int,
        default=1 << 20,
        help="largest request body, in bytes (1 MiB)",
    )
    p.add_argument(
        "--max-instances",
        type=_positive_int,
        default=1024,
        help="most texts or tensor rows in one request (1024)",
    )
    p.add_argument(
        "--max-text-chars",
        type=_positive_int,
        default=20_000,
        help="most characters in one text (20000)",
    )
    p.add_argument(
        "--reload-interval",
        type=_non_negative,
        default=2.0,
        help="seconds between looks for changed model files; 0: never reload (2)",
    )
    p.add_argument(
        "--graceful-timeout",
        type=_positive_float,
        default=30.0,
        help="seconds shutdown waits for requests in flight (30)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.set_defaults(handler=run_serve)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _fail(message: str, status: int) -> int:
    print(f"graphcap serve: error: {message}", file=sys.stderr)
    return status


def run_serve(args: argparse.Namespace) -> int:
    """Load the models, then serve until SIGINT/SIGTERM; returns the exit status."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as err:
        return _fail(f"serving needs the serve extra ({err.name} is missing): {EXTRA}", USAGE)
    from export.serve.app import ServeOptions, create_app
    from export.serve.metrics import Metrics
    from export.serve.models import Limits
    from export.serve.repository import LoadOptions, ModelLoadError, Repository

    logging.basicConfig(format="graphcap serve: %(message)s", level=logging.INFO)
    try:
        parse_device(args.device)
    except ValueError as err:
        return _fail(str(err), USAGE)
    try:
        load = LoadOptions(args.device, args.threads, args.spinning)
        repo = Repository.open(Path(args.path), load, Metrics())
    except ModelLoadError as err:
        if args.debug:
            raise
        return _fail(str(err), USAGE if "does not exist" in str(err) else FAILED)
    options = ServeOptions(
        max_batch_size=args.max_batch_size,
        max_queue_delay=args.max_queue_delay_ms / 1000,
        timeout=args.timeout,
        max_request_bytes=args.max_request_bytes,
        limits=Limits(args.max_instances, args.max_text_chars),
        reload_interval=args.reload_interval,
        version=_version(),
    )
    try:
        sock = _bind(args.host, args.port)
    except OSError as err:
        return _fail(f"cannot listen on {args.host}:{args.port}: {err}", FAILED)
    _banner(repo, sock, args)
    config = uvicorn.Config(
        create_app(repo, options),
        log_level="warning",
        access_log=args.access_log,
        timeout_graceful_shutdown=int(args.graceful_timeout),
        lifespan="on",
    )
    server = _exit_quietly(uvicorn.Server)(config)
    server.run(sockets=[sock])
    print("graphcap serve: stopped", file=sys.stderr, flush=True)
    return 0 if server.started else FAILED


def _exit_quietly(base: type) -> type:
    """``uvicorn.Server`` that, once shut down gracefully on SIGINT/SIGTERM, returns.

    uvicorn raises the signal again after its graceful shutdown, which ends the process by
    that signal; ``graphcap serve`` reports a graceful stop with exit status 0 instead.
    """

    class Server(base):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            signals = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    # Listening before the banner says so: a client that connects as soon as it reads
    # "listening on" waits in the backlog while uvicorn starts, instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _banner(repo: Any, sock: socket.socket, args: argparse.Namespace) -> None:
    for entry in repo.entries.values():
        d = entry.model.describe()
        kind = (
            f"pipeline, {d['task']} ({', '.join(d['labels'])})"
            if d["kind"] == "pipeline"
            else (
                "ONNX model"
                + (f", batch dim {d['batch_dim']!r}" if d["batch_dim"] else ", no batch dim")
            )
        )
        where = f"{d['backend']} on {d['device']} [{', '.join(entry.model.session.providers)}]"
        print(
            f"graphcap serve: model {entry.name!r} version {d['version']}: {kind}; {where}",
            file=sys.stderr,
        )
        for note in entry.notes:
            print(f"graphcap serve: warning: {entry.name}: {note}", file=sys.stderr)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    batching = (
        "no batching"
        if args.max_batch_size == 1
        else f"batches of up to {args.max_batch_size}, queue delay {args.max_queue_delay_ms:g} ms"
    )
    print(f"graphcap serve: listening on http://{shown}:{port} ({batching})", flush=True)
    sys.stderr.flush()


def _version() -> str:
    try:
        return metadata.version("graphcap")
    except metadata.PackageNotFoundError:
        return "unknown"
