"""The ASGI application: routes, the registry media type and Confluent-shaped error bodies.

Every error, including unknown routes and wrong methods, is answered as
``{"error_code": n, "message": "..."}`` so clients can always read ``error_code``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alchemiser_registry.exceptions import RegistryError
from alchemiser_registry.routes import SCHEMA_REGISTRY_MEDIA_TYPE, router
from alchemiser_registry.store import SchemaStore

__all__ = ["RegistryJSONResponse", "create_app"]

logger = logging.getLogger(__name__)


class RegistryJSONResponse(JSONResponse):
    """JSON with the Schema Registry's media type."""

    media_type = SCHEMA_REGISTRY_MEDIA_TYPE


def _error(
    status: int, error_code: int, message: str, headers: Mapping[str, str] | None = None
) -> RegistryJSONResponse:
    return RegistryJSONResponse(
        status_code=status,
        content={"error_code": error_code, "message": message},
        headers=headers,
    )


async def _registry_error(_: Request, exc: Exception) -> RegistryJSONResponse:
    assert isinstance(exc, RegistryError)
    return _error(exc.status, exc.error_code, str(exc))


async def _http_error(_: Request, exc: Exception) -> RegistryJSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    message = f"HTTP {exc.status_code} {phrase}"
    return _error(exc.status_code, exc.status_code, message, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> RegistryJSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
    return _error(422, 422, f"Unprocessable request: {problems}")


async def _internal_error(request: Request, exc: Exception) -> RegistryJSONResponse:
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, 50001, f"Error in the backend data store: {type(exc).__name__}")


def create_app(store: SchemaStore) -> FastAPI:
    """Build the registry application over ``store`` (which the caller opens and closes)."""
    app = FastAPI(
        title="Alchemiser schema registry",
        default_response_class=RegistryJSONResponse,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.store = store
    app.include_router(router)
    app.add_exception_handler(RegistryError, _registry_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    return app
