"""Load generator, run in its own process: N GETs over C keep-alive connections (aiohttp).

Prints one JSON line: requests, seconds, rps, p50/p99 latency (ms), non-200 count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp


async def run(urls: list[str], user: str, password: str, concurrency: int, total: int,
              warmup: int) -> dict:
    auth = aiohttp.BasicAuth(user, password)
    connector = aiohttp.TCPConnector(limit=concurrency)
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector, auth=auth) as session:
        async def worker(offset: int, count: int, record: bool) -> None:
            nonlocal errors
            for i in range(count):
                url = urls[(offset + i * concurrency) % len(urls)]
                t0 = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    if resp.status != 200:
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
    args = parser.parse_args()
    with open(args.urls_file) as fh:
        urls = [line.strip() for line in fh if line.strip()]
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(urls, args.user, args.password, args.concurrency, args.requests,
                             args.warmup))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
