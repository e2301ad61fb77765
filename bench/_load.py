"""Load generator, run in its own process: N requests over C keep-alive connections (aiohttp),
GETs of a list of URLs or form POSTs to one URL.

Prints one JSON line: requests, seconds, rps, p50/p99 latency (ms), count of answers whose
status was not the expected one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def run(urls: list[str], user: str, password: str, concurrency: int, total: int,
              warmup: int, forms: list[str] | None = None, expect: int = 200,
              bearer: str | None = None) -> dict:
    """GETs of `urls` round robin or, given `forms`, POSTs of each form in turn to urls[0];
    with Basic auth, or with a `bearer` token instead."""
    auth = None if bearer else aiohttp.BasicAuth(user, password)
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
    connector = aiohttp.TCPConnector(limit=concurrency)
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector, auth=auth,
                                     headers=headers) as session:
        async def worker(offset: int, count: int, record: bool) -> None:
            nonlocal errors
            for i in range(count):
                k = offset + i * concurrency
                t0 = time.perf_counter()
                if forms is None:
                    request = session.get(urls[k % len(urls)])
                else:
                    request = session.post(urls[0], data=forms[k % len(forms)], headers=FORM)
                async with request as resp:
                    await resp.read()
                    if resp.status != expect:
                        errors += 1
                if record:
                    latencies.append(time.perf_counter() - t0)

        warm = max(1, warmup // concurrency)
        await asyncio.gather(*(worker(w, warm, False) for w in range(concurrency)))
        per = total // concurrency
        started = time.perf_counter()
        await asyncio.gather(*(worker(w, per, True) for w in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return {"requests": n, "seconds": round(elapsed, 3), "rps": round(n / elapsed, 1),
            "p50_ms": round(latencies[n // 2] * 1000, 2),
            "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 2), "errors": errors,
            "sent": (warm + per) * concurrency}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls-file", required=True, help="one URL per line, used round robin")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--forms-file", help="one urlencoded form per line, POSTed to the URL")
    parser.add_argument("--expect", type=int, default=200, help="the status of a good answer")
    parser.add_argument("--bearer", help="send this bearer token instead of Basic credentials")
    args = parser.parse_args()
    with open(args.urls_file) as fh:
        urls = [line.strip() for line in fh if line.strip()]
    forms = None
    if args.forms_file:
        with open(args.forms_file) as fh:
            forms = [line.strip() for line in fh if line.strip()]
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(urls, args.user, args.password, args.concurrency, args.requests,
                             args.warmup, forms, args.expect, args.bearer))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
