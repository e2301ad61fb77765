"""Programmable Wireless figures on SQLite with 100,000 provisioned SIMs, one server process.

    .venv/bin/python bench/wireless.py [--sims 100000] [--requests 6000] [--concurrency 16]
                                       [--workdir /tmp/simplane-bench] [--only fetch|paging]
                                       [--experiment prebuilt-get-by-key]

1. fetch: GET /wireless/v1/Sims/{Sid} vs a bare endpoint through the same kernel (same auth,
   constant JSON body), each driven by bench/_load.py in a separate process; runs alternate
   bare/fetch several times and the medians are compared. Target: fetch/bare ≥ 0.60.
2. paging: the real `simplane serve`; walks every SIM with PageSize=1000 by next_page_url, then
   times the first and the last page (median of several). Target: last/first ≤ 1.5.
3. memory: VmRSS of that server process after the full walk. Target: ≤ 200 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ACCOUNT_SID, AUTH_TOKEN, bench_serve, load, provision, simplane_serve

AUTH = (ACCOUNT_SID, AUTH_TOKEN)


def all_sids(base_url: str) -> list[str]:
    sids: list[str] = []
    url: str | None = f"{base_url}/wireless/v1/Sims?PageSize=1000"
    with httpx.Client(auth=AUTH, timeout=60) as client:
        while url:
            page = client.get(url).raise_for_status().json()
            sids += [s["sid"] for s in page["sims"]]
            url = page["meta"]["next_page_url"]
    return sids


def bench_fetch(database_url: str, args: argparse.Namespace, workdir: Path) -> dict:
    server = bench_serve(database_url, args.experiment)
    try:
        sids = all_sids(server.base_url)
        rng = random.Random(1)
        sample = rng.sample(sids, 2000)
        fetch_urls = [f"{server.base_url}/wireless/v1/Sims/{sid}" for sid in sample]
        bare_urls = [f"{server.base_url}/wireless/v1/BenchBare/{sid}" for sid in sample]
        check = httpx.get(fetch_urls[0], auth=AUTH).raise_for_status().json()
        assert check["sid"] == sample[0], check
        httpx.get(bare_urls[0], auth=AUTH).raise_for_status()
        bare_runs, fetch_runs = [], []
        for i in range(args.rounds):
            pair = [("bare", bare_urls, bare_runs), ("fetch", fetch_urls, fetch_runs)]
            for _name, urls, runs in pair if i % 2 == 0 else pair[::-1]:
                runs.append(load(server, urls, args.requests, args.concurrency, workdir,
                                 warmup=max(200, args.requests // 10), timeout=300))
            b, f = bare_runs[-1], fetch_runs[-1]
            print(f"  round {i + 1}: bare {b['rps']:.0f} req/s ({b['server_cpu_us']} us CPU/req), "
                  f"fetch {f['rps']:.0f} req/s ({f['server_cpu_us']} us CPU/req, "
                  f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms); ratio {f['rps'] / b['rps']:.2f}",
                  flush=True)
    finally:
        server.stop()
    bare = statistics.median(r["rps"] for r in bare_runs)
    fetch = statistics.median(r["rps"] for r in fetch_runs)
    bare_cpu = round(statistics.median(r["server_cpu_us"] for r in bare_runs))
    fetch_cpu = round(statistics.median(r["server_cpu_us"] for r in fetch_runs))
    return {
        "bare_rps": round(bare), "fetch_rps": round(fetch),
        # median over rounds of the ratio within each round (both runs back to back)
        "ratio": round(statistics.median(f["rps"] / b["rps"]
                                         for b, f in zip(bare_runs, fetch_runs, strict=True)), 3),
        "bare_cpu_us": bare_cpu, "fetch_cpu_us": fetch_cpu,
        "cpu_ratio": round(bare_cpu / fetch_cpu, 3),
        "fetch_p50_ms": round(statistics.median(r["p50_ms"] for r in fetch_runs), 1),
        "fetch_p99_ms": round(statistics.median(r["p99_ms"] for r in fetch_runs), 1),
        "bare_p50_ms": round(statistics.median(r["p50_ms"] for r in bare_runs), 1),
        "bare_p99_ms": round(statistics.median(r["p99_ms"] for r in bare_runs), 1),
    }


def timed_get(client: httpx.Client, url: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    body = client.get(url).raise_for_status().json()
    return time.perf_counter() - t0, body


def bench_paging(database_url: str, args: argparse.Namespace) -> dict:
    server = simplane_serve(database_url)
    try:
        rss_start = server.rss_mb()
        first_url = f"{server.base_url}/wireless/v1/Sims?PageSize=1000"
        with httpx.Client(auth=AUTH, timeout=60) as client:
            # Walk every page by next_page_url, as a client would.
            url: str | None = first_url
            pages, seen, last_url, walk_started = 0, 0, first_url, time.perf_counter()
            while url:
                _, body = timed_get(client, url)
                pages += 1
                seen += len(body["sims"])
                if body["meta"]["next_page_url"]:
                    last_url = body["meta"]["next_page_url"]
                url = body["meta"]["next_page_url"]
            walk = time.perf_counter() - walk_started
            if seen != args.sims:
                raise RuntimeError(f"walked {seen} SIMs, expected {args.sims}")
            rss_after = server.rss_mb()
            # Full-size last page: the one reached from the second to last next_page_url.
            _, last = timed_get(client, last_url)
            first_times, last_times = [], []
            for _ in range(args.page_repeats):  # interleaved so drift hits both alike
                first_times.append(timed_get(client, first_url)[0])
                last_times.append(timed_get(client, last_url)[0])
        rss_end = server.rss_mb()
    finally:
        server.stop()
    first = statistics.median(first_times)
    last_t = statistics.median(last_times)
    return {
        "pages": pages, "walk_s": round(walk, 1), "last_page_sims": len(last["sims"]),
        "first_page_ms": round(first * 1000, 1), "last_page_ms": round(last_t * 1000, 1),
        "ratio": round(last_t / first, 3),
        "rss_start_mb": round(rss_start, 1), "rss_after_walk_mb": round(rss_after, 1),
        "rss_end_mb": round(rss_end, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=5000, help="per load run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="bare/fetch load run pairs")
    parser.add_argument("--page-repeats", type=int, default=9)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "simplane-bench"))
    parser.add_argument("--only", choices=("fetch", "paging"))
    parser.add_argument("--experiment", choices=("prebuilt-get-by-key",),
                        help="fetch only: patch the server with a candidate optimisation")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    database_url = provision(workdir, args.sims)
    results: dict = {"sims": args.sims}
    if args.only in (None, "fetch"):
        if args.experiment:
            print(f"EXPERIMENT {args.experiment}: the server is patched (bench/_server.py)")
        print(f"fetch: {args.rounds} × {args.requests} requests each, concurrency "
              f"{args.concurrency}", flush=True)
        f = results["fetch"] = bench_fetch(database_url, args, workdir)
        print(f"fetch SIM  {f['fetch_rps']:>6} req/s  p50 {f['fetch_p50_ms']} ms  "
              f"p99 {f['fetch_p99_ms']} ms")
        print(f"bare       {f['bare_rps']:>6} req/s  p50 {f['bare_p50_ms']} ms  "
              f"p99 {f['bare_p99_ms']} ms")
        print(f"ratio fetch/bare = {f['ratio']:.2f}  (median of per-round ratios; target >= 0.60)"
              f"  {'OK' if f['ratio'] >= 0.60 else 'MISSED'}")
        print(f"server CPU per request: bare {f['bare_cpu_us']} us, fetch {f['fetch_cpu_us']} us;"
              f" capacity ratio on an otherwise idle core = {f['cpu_ratio']:.2f}", flush=True)
    if args.only in (None, "paging"):
        p = results["paging"] = bench_paging(database_url, args)
        print(f"paging: walked {p['pages']} pages of 1000 in {p['walk_s']} s")
        print(f"first page {p['first_page_ms']} ms, last page {p['last_page_ms']} ms "
              f"(median of {args.page_repeats}); ratio last/first = {p['ratio']:.2f}  "
              f"(target <= 1.5)  {'OK' if p['ratio'] <= 1.5 else 'MISSED'}")
        print(f"server RSS: {p['rss_start_mb']} MB at start, {p['rss_after_walk_mb']} MB after "
              f"the walk, {p['rss_end_mb']} MB at the end  (target <= 200 MB)  "
              f"{'OK' if p['rss_end_mb'] <= 200 and p['rss_after_walk_mb'] <= 200 else 'MISSED'}")
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
