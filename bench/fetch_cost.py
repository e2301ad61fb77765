"""CPU cost of one fetch-SIM request inside the kernel, without HTTP: `ProductAPI.handle` called
directly (auth from the cache, parameter parsing, a read transaction, rendering), for the bare
endpoint, FetchSim as shipped, and FetchSim with `get_by_key`'s statement built once.

    .venv/bin/python bench/fetch_cost.py [--sims 100000] [--requests 2000] [--rounds 7]

Process CPU time (not wall time) is measured, in interleaved rounds, so that other work on the
machine disturbs the figures less than it does the HTTP benchmark's requests/s. Takes ~1 minute
once the database exists (it is shared with bench/wireless.py).
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ACCOUNT_SID, AUTH_TOKEN, provision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "simplane-bench"))
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    url = provision(workdir, args.sims)

    import _server
    from sqlalchemy import text
    from starlette.requests import Request

    from simplane.app import create_app
    from simplane.config import Settings
    from simplane.core import spec
    from simplane.core.runtime import Runtime
    from simplane.wireless import service, views

    runtime = Runtime(Settings(database_url=url, run_workers=False))
    app = create_app(runtime)
    with runtime.db.read() as db:
        sids = list(db.scalars(text("SELECT sid FROM wireless_sims ORDER BY random() LIMIT 2000")))
    bare_api = _server.bare_api()
    bare_op, bare_handler = _server.bare_operation(), lambda ctx: _server.BARE_BODY
    fetch_op = spec.operations("wireless")["FetchSim"]
    auth = b"Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode())

    def authenticated() -> str:  # what core.api.authenticate does for a client it knows
        return runtime.authenticator.cached(ACCOUNT_SID, AUTH_TOKEN) or \
            runtime.authenticator.verify(ACCOUNT_SID, AUTH_TOKEN) or ""

    def request(path: str, sid: str) -> Request:
        return Request({
            "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
            "query_string": b"", "scheme": "http", "server": ("127.0.0.1", 8080), "app": app,
            "headers": [(b"host", b"127.0.0.1:8080"), (b"authorization", auth)],
            "path_params": {"Sid": sid},
        })

    def bare(i: int) -> int:
        sid = sids[i % len(sids)]
        return bare_api.handle(request(f"/wireless/v1/BenchBare/{sid}", sid), bare_op,
                               bare_handler, b"", authenticated()).status_code

    def fetch(i: int) -> int:
        sid = sids[i % len(sids)]
        return views.api.handle(request(f"/wireless/v1/Sims/{sid}", sid), fetch_op,
                                views.fetch_sim, b"", authenticated()).status_code

    shipped = service.get_by_key
    _server.prebuilt_get_by_key()
    prebuilt = service.get_by_key
    service.get_by_key = shipped

    def fetch_prebuilt(i: int) -> int:
        service.get_by_key = prebuilt
        try:
            return fetch(i)
        finally:
            service.get_by_key = shipped

    variants = {"bare": bare, "fetch (shipped)": fetch,
                "fetch (prebuilt get_by_key)": fetch_prebuilt}
    for fn in variants.values():  # warm up; every answer must be a 200
        assert all(fn(i) == 200 for i in range(300))
    cost: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            started = time.process_time()
            for i in range(args.requests):
                fn(i)
            cost[name].append((time.process_time() - started) / args.requests * 1e6)
    runtime.close()
    median = {name: statistics.median(v) for name, v in cost.items()}
    for name, us in median.items():
        print(f"{name:30s} {us:6.0f} us CPU/request (median of {args.rounds} rounds; "
              f"min {min(cost[name]):.0f})")
    print(f"kernel-only ratio bare/fetch: shipped {median['bare'] / median['fetch (shipped)']:.2f}, "
          f"prebuilt {median['bare'] / median['fetch (prebuilt get_by_key)']:.2f}")
    saved = median["fetch (shipped)"] - median["fetch (prebuilt get_by_key)"]
    print(f"building get_by_key's statement per request costs {saved:.0f} us CPU")


if __name__ == "__main__":
    main()
