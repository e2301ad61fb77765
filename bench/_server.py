"""`simplane serve` (log level warning) plus one bare endpoint for the fetch benchmark.

GET /wireless/v1/BenchBare/{Sid} goes through the same kernel as every product operation
(`ProductAPI.operator` → `ProductAPI.handle`: Basic auth, parameter parsing, a read transaction,
JSON rendering, metrics, logs) but its handler returns a constant dict without touching the
database. GET /bench/plain is FastAPI alone: an `async def` route returning the same dict, with
no authentication and no thread.
"""

from __future__ import annotations

import argparse

import uvicorn

from simplane.app import create_app
from simplane.config import Settings
from simplane.core import logs, spec
from simplane.core.api import Ctx, ProductAPI
from simplane.core.runtime import Runtime

BARE_BODY = {
    "sid": "DE" + "0" * 32, "account_sid": "AC" + "0" * 32, "status": "active",
    "url": "http://127.0.0.1/wireless/v1/BenchBare/DE" + "0" * 32,
}


BARE_PATH = "/v1/BenchBare/{Sid}"


def bare_api() -> ProductAPI:
    """A "wireless" ProductAPI with one route, GET /wireless/v1/BenchBare/{Sid}, whose handler
    returns BARE_BODY: every step of `ProductAPI.handle` except the product's own work."""
    api = ProductAPI("wireless")

    def bare(ctx: Ctx) -> dict:
        return BARE_BODY

    if hasattr(api, "operator"):  # the kernel's way to add a route outside the spec
        api.operator("GET", BARE_PATH)(bare)
    else:  # older kernels: a made-up spec operation
        api.operations = {"BenchBare": bare_operation()}
        api.operation("BenchBare")(bare)
    return api


def bare_operation() -> spec.Operation:
    return spec.Operation("GET " + BARE_PATH, "GET", BARE_PATH, {}, 200)


def prebuilt_get_by_key() -> None:
    """Experiment (not the shipped code): `wireless.service.get_by_key` with its statement built
    once per (model, column) with bind parameters, instead of on every call."""
    from functools import cache

    from sqlalchemy import bindparam, select

    from simplane.core.sids import looks_like_sid
    from simplane.wireless import service

    @cache
    def statement(model, by_sid: bool):  # type: ignore[no-untyped-def]
        column = model.sid if by_sid else model.unique_name
        return select(model).where(model.account_sid == bindparam("account_sid"),
                                   column == bindparam("key"))

    def get_by_key(db, model, account_sid, key, prefix):  # type: ignore[no-untyped-def]
        return db.scalar(statement(model, looks_like_sid(key, prefix)),
                         {"account_sid": account_sid, "key": key})

    service.get_by_key = get_by_key


EXPERIMENTS = {"prebuilt-get-by-key": prebuilt_get_by_key}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--experiment", choices=sorted(EXPERIMENTS))
    args = parser.parse_args()
    if args.experiment:
        EXPERIMENTS[args.experiment]()
    logs.configure("warning")
    runtime = Runtime(Settings(database_url=args.database_url))
    runtime.ensure_bootstrap()
    app = create_app(runtime)
    app.include_router(bare_api().router)

    @app.get("/bench/plain")
    async def plain() -> dict:  # the framework alone: no simplane kernel, no thread
        return BARE_BODY

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
