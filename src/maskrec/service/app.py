"""The recommendation service: FastAPI routes over a loaded `Recommender`.

    POST /recommend  {"history": [1, 50, "Fargo (1996)"], "k": 10}  -> top-k unseen films
    GET  /items?query=star&limit=8                                -> title lookup
    GET  /health                                                  -> model and catalogue
    GET  /                                                        -> a page to try it

Every malformed request gets a 4xx whose body names the field (FastAPI's validation
format: {"detail": [{"loc": [...], "msg": ...}]}); nothing a client sends can stop the
process. Bodies over `MAX_BODY_BYTES` are refused before they are read. Bodies are read
as RFC 8259 JSON, not as Python's `json` reads it: NaN, Infinity, numbers that overflow
a float, duplicate keys and invalid UTF-8 are refused with a 422 naming the problem
(`strict_json`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from maskrec.service.recommender import Batcher, Recommender, UnknownItems

MAX_BODY_BYTES = 64 * 1024
MAX_HISTORY = 2_000
MAX_K = 100


class RecommendRequest(BaseModel):
    """A history (original movie ids or titles, oldest first) and how many films to get."""

    model_config = ConfigDict(extra="forbid")

    history: list[StrictInt | StrictStr] = Field(min_length=1, max_length=MAX_HISTORY)
    k: StrictInt = Field(default=10, ge=1, le=MAX_K)


class _NotJSON(ValueError):
    """What RFC 8259 does not allow, found while parsing (`strict_json`)."""

    def __init__(self, message: str, token: str = "") -> None:
        super().__init__(message)
        self.token = token


def _no_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not a JSON value (RFC 8259 has no NaN or Infinity)", name)  # fmt: skip


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotJSON(f"the number {text[:40]} overflows a 64-bit float", text)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _NotJSON(f"duplicate key {key!r} in an object", json.dumps(key))
        seen[key] = value
    return seen


def strict_json(body: bytes) -> Any:
    """`body` parsed as RFC 8259 JSON; what the standard does not allow raises
    `json.JSONDecodeError` (which FastAPI answers with a 422 carrying its message)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise json.JSONDecodeError(f"invalid UTF-8 at byte {error.start}", body.decode("utf-8", "replace"), error.start) from None  # fmt: skip
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=_unique_keys)  # fmt: skip
    except _NotJSON as error:
        raise json.JSONDecodeError(str(error), text, max(text.find(error.token), 0)) from None  # fmt: skip
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        if isinstance(error, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(error), text, 0) from None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is read by `strict_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict


class BodyLimit:
    """Refuses a request body over `limit` bytes (413) or of no declared length (411)
    before the app reads it; uvicorn never reads past a declared Content-Length."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] in {"POST", "PUT", "PATCH"}:
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            if length is None:
                return await _reply(send, 411, "the request body needs a Content-Length header")  # fmt: skip
            if not length.isdigit() or int(length) > self.limit:
                return await _reply(send, 413, f"the request body is over {self.limit} bytes")  # fmt: skip
        await self.app(scope, receive, send)


async def _reply(send, status: int, message: str) -> None:
    response = JSONResponse({"detail": message}, status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})  # fmt: skip
    await send({"type": "http.response.body", "body": response.body})


def create_app(recommender: Recommender, max_batch: int = 64) -> FastAPI:
    """The service around one loaded model."""
    catalogue = recommender.catalogue

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.batcher = Batcher(recommender, max_batch)
        app.state.batcher.start()
        yield
        await app.state.batcher.stop()

    app = FastAPI(title="maskrec", summary="Recommendations from a trained maskrec model", lifespan=lifespan)  # fmt: skip
    app.router.route_class = StrictJSONRoute
    app.add_middleware(BodyLimit)

    @app.get("/health")
    async def health() -> dict:
        return {
            "status": "ok",
            "model": recommender.name,
            "items": len(catalogue.items),
            "trained_on": recommender.trained_on,
        }

    @app.get("/items")
    async def items(
        query: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> list[dict]:
        return catalogue.search(query, limit)

    # a JSONResponse as it is: FastAPI's own encoding of the answer cost ~2 ms a request
    @app.post("/recommend", response_class=JSONResponse)
    async def recommend(request: RecommendRequest) -> JSONResponse:
        try:
            history = catalogue.resolve(request.history)
        except UnknownItems as error:
            raise HTTPException(422, [{"loc": ["body", "history", i], "msg": m, "type": "value_error"}
                                      for i, m in error.problems]) from None  # fmt: skip
        unseen = len(catalogue.items) - len(set(history))
        if request.k > unseen:
            raise HTTPException(422, [{"loc": ["body", "k"], "type": "value_error",
                                       "msg": f"k={request.k} is more than the {unseen} films not in the history"}])  # fmt: skip
        items, scores = await app.state.batcher.submit(history, request.k)
        return JSONResponse({
            "model": recommender.name,
            "history": catalogue.describe(history),
            "items": catalogue.describe(items, np.asarray(scores).tolist()),
        })  # fmt: skip

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return resources.files("maskrec.service").joinpath("static/index.html").read_text()  # fmt: skip

    return app
