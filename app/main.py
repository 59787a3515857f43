"""create_app(settings): the service, its routers, error mapping and model loading."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from threadpoolctl import threadpool_limits

from app.errors import install_error_handlers
from app.fast_events import FastEvents
from app.fast_recommend import FastRecommend
from app.http.api_keys import ApiKeyMiddleware
from app.http.body_limit import BodyLimitMiddleware
from app.http.observability import ObservabilityMiddleware
from app.http.openapi import install_openapi_with_limits
from app.quotas import Quota, ReadQuotaMiddleware
from app.routes import (
    admin,
    catalogue,
    events,
    experiments,
    genres,
    health,
    items,
    metrics,
    models,
    online,
    popular,
    predict,
    rank,
    recommend,
    similar,
    users,
    web,
)
from app.routes.web import STATIC
from app.serving.blend_cache import TrainedBlends
from app.settings import Settings
from app.state import ServiceState

log = logging.getLogger("app")


def freeze_startup_objects() -> None:
    """Take what start-up built (TensorFlow, the loaded version) out of the garbage collector's
    view. Full collections walk every tracked object; TensorFlow alone brings hundreds of
    thousands, and requests that keep objects alive across an await (POST /events waits for its
    commit) trigger full collections often enough that they set p99: ~210 ms, 21 ms with them
    frozen (bench/README.md, "Ingestion"). Called again after each version swap, once the old
    version is collected."""
    gc.collect()
    gc.freeze()


def limit_tensorflow(threads: int) -> None:
    """Hold TensorFlow to `threads` threads per op and between ops (0: its default, one per
    core), for several workers sharing the cores. With one worker on 2 cores, TensorFlow's
    default did better than one thread (bench/README.md, "Serving at the limit"). TensorFlow is
    not imported for this: a worker that answers /predict from the factors (RECSYS_PREDICT_FROM,
    `app.serving.predictors`) never needs it, and its runtime reads TF_NUM_INTRAOP_THREADS and
    TF_NUM_INTEROP_THREADS when it starts. Where it has started already (another app in the same
    process, as in the tests), the setting it has stays."""
    if threads <= 0:
        return
    if "tensorflow" not in sys.modules:
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the runtime is already initialised
        pass


def api_keys(settings: Settings) -> list[str]:
    """What RECSYS_API_KEY lets in: its keys, and the write and admin tokens (who holds them
    may read too). None set: every route is open, and start-up says so."""
    if not settings.api_key:
        return []
    tokens = (settings.write_token, settings.admin_token)
    return [s.get_secret_value() for s in [*settings.api_key, *tokens] if s is not None]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service. The lifespan loads the served version once, before the first request.

    The handlers are `async def` and do their numpy work on the event loop: one top-N is a single
    BLAS matvec (~20 us on ml-100k, ~0.3 ms on 27k items), cheaper than a hop to the thread pool.
    BLAS is held to `blas_threads` (default 1): measured here, multi-threaded OpenBLAS under
    concurrent requests fell to 23 requests/s, one thread on the loop did ~1,800.
    """
    settings = settings or Settings()
    TrainedBlends.budget_bytes = int(settings.blend_cache_mb * 2**20)
    service = ServiceState.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with threadpool_limits(limits=settings.blas_threads):  # BLAS, and faiss's OpenMP
            limit_tensorflow(settings.tf_threads)
            if not settings.api_key:
                log.warning(
                    "no RECSYS_API_KEY: every route answers anyone%s",
                    "" if settings.write_token else ", users' rating histories and writes included",
                )
            await service.events.open()
            await service.versions.start()  # builds the served version's live state
            await service.experiments.start()  # and the running experiment's versions
            service.events.start_polling()
            freeze_startup_objects()
            service.drain.install()
            try:
                yield
            finally:
                await service.experiments.stop()
                await service.events.stop()
                await service.versions.stop()
                if service.access is not None:
                    service.access.flush()

    app = FastAPI(
        title="recsys",
        summary="Rating prediction and top-N recommendations from an exported Keras model",
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's OpenTelemetry bridge looks up three global providers on every request; the
        # service has its own Prometheus metrics, request ids and access log.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    install_error_handlers(app)
    install_openapi_with_limits(app, settings, service.versions)
    # Innermost: GET /recommend/{user_id} and POST /events outside FastAPI's parameter solving
    # (the hot paths).
    app.add_middleware(FastEvents)
    app.add_middleware(FastRecommend)
    keys = api_keys(settings)
    if settings.read_rate > 0:
        quota = Quota(settings.read_rate, settings.read_burst)
        counted = service.metrics.rate_limited.labels("read").inc
        app.add_middleware(ReadQuotaMiddleware, quota=quota, keyed=bool(keys), counted=counted)
    if keys:  # outside the hot path, inside CORS (a page can read the 401)
        app.add_middleware(ApiKeyMiddleware, keys=keys)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["*"],
        )
    # The hot routes first.
    for module in (
        recommend,
        rank,
        popular,
        predict,
        similar,
        events,
        users,
        catalogue,
        genres,
        items,
        health,
        metrics,
        models,
        admin,
        experiments,
        online,
        web,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Outermost, so it times and ids everything, CORS answers and error handlers included.
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=service.metrics,
        access=service.access,
        drain=service.drain,
    )
    return app
