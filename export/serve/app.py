"""The ASGI application: the v2 inference protocol, ``:predict``, metrics, OpenAPI, a page.

``create_app(repository, options)`` returns a Starlette app; ``export.serve.cli`` runs it on
uvicorn. Every error is a JSON body ``{"error": "..."}`` with a 4xx status for what the
client sent (400 bad input, 404 unknown model, 408 a body that did not arrive in time,
413 too large, 415 an unknown content encoding) and 5xx for what failed here (500 the model
failed, 503 not ready, 504 no answer within ``--timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from export.serve import openapi, page
from export.serve.batcher import Batcher, Work
from export.serve.models import Limits
from export.serve.repository import Entry, Repository
from export.serve.tensors import HEADER_LENGTH, RequestError, encode_infer, load_json, parse_infer
from runtime.pipeline import PipelineInputError

log = logging.getLogger("graphcap.serve")
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class ServeOptions:
    """The server's behaviour (the ``graphcap serve`` options).

    Attributes:
        max_batch_size: the most rows (texts) in one batch; 1 turns batching off.
        max_queue_delay: seconds a batch that is not full waits for more requests.
        timeout: seconds a request may take, from its body's arrival to its answer.
        max_request_bytes: the largest request body (after decompression).
        limits: per-request limits on texts and rows.
        reload_interval: seconds between looks at the models' files (0: never reload).
        version: the graphcap version reported by ``GET /v2``.
    """

    max_batch_size: int = 32
    max_queue_delay: float = 0.0
    timeout: float = 30.0
    max_request_bytes: int = 1 << 20
    limits: Limits = field(default_factory=Limits)
    reload_interval: float = 2.0
    version: str = ""


def error(status: int, message: str) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse({"error": message}, status_code=status)


def create_app(repo: Repository, options: ServeOptions) -> Starlette:
    """The Starlette application serving ``repo`` (see the module docstring)."""
    server = _Server(repo, options)
    routes = [
        Route("/", server.page, methods=["GET"]),
        Route("/openapi.json", server.openapi, methods=["GET"]),
        Route("/metrics", server.metrics_text, methods=["GET"]),
        Route("/v2", server.server_metadata, methods=["GET"]),
        Route("/v2/health/live", server.live, methods=["GET"]),
        Route("/v2/health/ready", server.ready, methods=["GET"]),
        Route("/v1/models", server.list_models, methods=["GET"]),
        Route("/v1/models/{name}", server.describe, methods=["GET"]),
        Route(
            "/v1/models/{name}:predict", server.wrap("predict", server.predict), methods=["POST"]
        ),
    ]
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(base, server.wrap("metadata", server.model_metadata), methods=["GET"]),
            Route(f"{base}/ready", server.wrap("ready", server.model_ready), methods=["GET"]),
            Route(f"{base}/config", server.wrap("config", server.model_config), methods=["GET"]),
            Route(f"{base}/infer", server.wrap("infer", server.infer), methods=["POST"]),
        ]
    app = Starlette(routes=routes, lifespan=server.lifespan)
    app.state.server = server
    return app


class _Server:
    def __init__(self, repo: Repository, options: ServeOptions) -> None:
        self.repo, self.options = repo, options
        self.metrics = repo.metrics
        self.ready_flag = False

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        o = self.options
        for entry in self.repo.entries.values():
            entry.batcher = Batcher(entry.name, o.max_batch_size, o.max_queue_delay, self.metrics)
            entry.batcher.start()
        watcher = None
        if o.reload_interval > 0:
            watcher = asyncio.get_running_loop().create_task(self.repo.watch(o.reload_interval))
        self.ready_flag = True
        try:
            yield
        finally:
            self.ready_flag = False
            if watcher is not None:
                watcher.cancel()
            for entry in self.repo.entries.values():
                if entry.batcher is not None:
                    await entry.batcher.stop()

    # -- the wrapper every model endpoint goes through

    def wrap(self, endpoint: str, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            start = time.perf_counter()
            name = request.path_params.get("name", "")
            try:
                response = await handler(request)
            except RequestError as err:
                response = error(err.status, str(err))
            except ClientDisconnect:
                response = error(499, "the client disconnected before its request arrived")
            except Exception as err:  # a bug or a model failure: say what, keep serving
                log.exception("%s %s failed", request.method, request.url.path)
                response = error(500, f"{type(err).__name__}: {err}")
            label = name if name in self.repo.entries else ""
            code = str(response.status_code)
            m = self.metrics
            m.requests.add(m.lock, (label, endpoint, code))
            if response.status_code >= 400:
                m.errors.add(m.lock, (label, endpoint, code))
            m.latency.observe(m.lock, (label, endpoint), time.perf_counter() - start)
            return response

        return run

    def entry(self, request: Request) -> Entry:
        entry = self.repo.get(request.path_params["name"])
        version = request.path_params.get("version")
        if version is not None and version != entry.model.version:
            raise RequestError(
                f"model {entry.name!r} has no version {version!r}; it serves version "
                f"{entry.model.version!r}",
                404,
            )
        return entry

    async def body(self, request: Request) -> bytes:
        limit = self.options.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(_too_large(int(declared), limit), 413)
        try:
            raw = await asyncio.wait_for(_read_limited(request, limit), self.options.timeout)
        except TimeoutError:
            raise RequestError(
                f"the request body did not arrive within {self.options.timeout:g} s", 408
            ) from None
        encoding = request.headers.get("content-encoding", "identity").lower()
        if encoding == "identity":
            return raw
        if encoding not in ("gzip", "deflate"):
            raise RequestError(f"Content-Encoding {encoding!r}: expected gzip or deflate", 415)
        inflate = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        try:
            out = inflate.decompress(raw, limit + 1)
        except zlib.error as err:
            raise RequestError(f"the {encoding} body does not decompress: {err}") from None
        if len(out) > limit:
            raise RequestError(_too_large(len(out), limit), 413)
        return out

    async def tokenize(self, model: Any, texts: list[Any]) -> Work:
        return await self.off_loop(model.texts_work, texts, texts)

    async def off_loop(self, parse: Callable[[Any, Limits], Work], what: Any, items: Any) -> Work:
        """``parse(what, limits)``: here when small, on a thread when large.

        Tokenizing a request of many or long texts would hold up every other connection.
        """
        limits = self.options.limits
        if _size(items) <= _INLINE_CHARS:
            return parse(what, limits)
        return await asyncio.to_thread(parse, what, limits)

    async def submit(self, entry: Entry, work: Work, timeout: float | None) -> Any:
        assert entry.batcher is not None
        limit = self.options.timeout if timeout is None else min(timeout, self.options.timeout)
        m = self.metrics
        m.inflight.add(m.lock, ())
        try:
            return await entry.batcher.submit(work, limit)
        except TimeoutError:
            raise RequestError(f"no answer within {limit:g} s (--timeout)", 504) from None
        except PipelineInputError as err:
            raise RequestError(str(err)) from None
        except RequestError:
            raise
        except Exception as err:
            log.warning("model %s failed on a request: %s", entry.name, err)
            raise RequestError(f"the model failed: {type(err).__name__}: {err}", 500) from err
        finally:
            m.inflight.add(m.lock, (), -1)

    # -- model endpoints

    async def infer(self, request: Request) -> Response:
        entry = self.entry(request)
        parsed = parse_infer(await self.body(request), request.headers.get(HEADER_LENGTH))
        model = entry.model
        work = await self.off_loop(model.v2_work, parsed, parsed.inputs)
        result = await self.submit(entry, work, parsed.timeout_s)
        body, headers = encode_infer(model.name, model.version, parsed, model.v2_outputs(result))
        return Response(body, headers=headers)

    async def predict(self, request: Request) -> Response:
        entry = self.entry(request)
        obj = load_json(await self.body(request))
        instances = obj.get("instances") if isinstance(obj, dict) else None
        if not isinstance(instances, list):
            raise RequestError('expected {"instances": ["a text", ...]}')
        texts = [x.get("text") if isinstance(x, dict) else x for x in instances]
        model = entry.model
        work = await self.tokenize(model, texts)
        answers = model.v1_answers(await self.submit(entry, work, None))
        body = {"predictions": answers, "model_name": model.name, "model_version": model.version}
        return JSONResponse(body)

    async def model_metadata(self, request: Request) -> Response:
        return JSONResponse(self.entry(request).model.metadata())

    async def model_ready(self, request: Request) -> Response:
        entry = self.entry(request)
        ready = self.ready_flag
        return JSONResponse({"name": entry.name, "ready": ready}, status_code=200 if ready else 503)

    async def model_config(self, request: Request) -> Response:
        model = self.entry(request).model
        meta = model.metadata()

        def dims(t: dict[str, Any]) -> dict[str, Any]:
            return {
                "name": t["name"],
                "data_type": "TYPE_" + t["datatype"].replace("BYTES", "STRING"),
                "dims": t["shape"],
            }

        delay_us = int(self.options.max_queue_delay * 1e6)
        return JSONResponse(
            {
                "name": model.name,
                "platform": model.platform,
                "max_batch_size": 0,  # dims below include the batch dimension
                "input": [dims(t) for t in meta["inputs"]],
                "output": [dims(t) for t in meta["outputs"]],
                "dynamic_batching": {
                    "max_batch_size": self.options.max_batch_size,
                    "max_queue_delay_microseconds": delay_us,
                },
            }
        )

    # -- server endpoints

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        ok = self.ready_flag
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse(
            {
                "name": "graphcap",
                "version": self.options.version,
                "extensions": ["binary_tensor_data", "model_configuration"],
            }
        )

    async def list_models(self, request: Request) -> Response:
        models = [e.model.describe() for e in self.repo.entries.values()]
        return JSONResponse({"models": models})

    async def describe(self, request: Request) -> Response:
        try:
            entry = self.entry(request)
        except RequestError as err:
            return error(err.status, str(err))
        return JSONResponse(
            {**entry.model.describe(), "ready": self.ready_flag, "notes": entry.notes}
        )

    async def metrics_text(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi.document(self.options.version))

    async def page(self, request: Request) -> Response:
        return HTMLResponse(page.HTML)


_INLINE_CHARS = 8192  # requests with more text than this are tokenized on a thread


def _size(items: Any) -> int:
    """About how much text ``items`` (texts, or v2 input arrays) holds."""
    if isinstance(items, dict):  # v2 inputs: the bytes of BYTES elements; numbers are cheap
        return sum(sum(map(len, a.flat)) if a.dtype == object else 0 for a in items.values())
    return sum(len(t) if isinstance(t, str) else 0 for t in items)


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(_too_large(size, limit), 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"the request body has {size}+ bytes, more than the limit of {limit} (--max-request-bytes)"
    )
