#!/usr/bin/env python3
"""redis-py, unmodified, against a tiercache cluster through two masters: transactions (a
pipeline's MULTI/EXEC, WATCH retry loops with Redis.transaction), plain pipelines, SCAN and
CONFIG GET.

Usage: redis_py_transactions.py PORT1 PORT2    (the two masters' RESP ports)

tests/transactions.rs runs it against a fresh cluster. It needs redis-py 5 or later
(scripts/test.sh installs it). Every check runs twice, with RESP2 and with RESP3 (redis-py 8's
default); one that fails does not stop the others. Exits 0 when all pass, 1 with a line per
failed check otherwise, 2 on wrong arguments.
"""

import random
import sys
import threading
import time
import traceback

try:
    import redis
except ImportError:
    sys.exit(
        f"redis_py_transactions: redis-py is not installed for {sys.executable} "
        "(import redis failed): run scripts/test.sh, which installs it"
    )

THREADS = 4
TRANSFERS_PER_THREAD = 50
SCAN_KEYS = 300
TIMEOUT = 60  # seconds, for any one check


class Failed(Exception):
    """A check's expectation that did not hold."""


def check(ok, what):
    if not ok:
        raise Failed(what)


def eventually(what, probe, timeout=5.0):
    """Polls probe() until it returns a true value (returned) or timeout passes (Failed)."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def pipeline_incr_expire(r1, r2, protocol):
    """The counter idiom: INCR and EXPIRE in one MULTI/EXEC."""
    r1.delete("hits")
    p = r1.pipeline()
    p.incr("hits")
    p.expire("hits", 60)
    got = p.execute()
    check(got == [1, True], f"pipeline() INCR hits + EXPIRE hits 60 answered {got!r}, expected [1, True]")
    ttl = r2.ttl("hits")
    check(58 <= ttl <= 60, f"TTL hits through the other master is {ttl}, expected about 60")
    check(r2.get("hits") == "1", f"GET hits through the other master is {r2.get('hits')!r}, expected '1'")


def watch_error(r1, r2, protocol):
    """A write through the other master between WATCH and EXEC: WatchError, nothing written."""
    key = "{w}:k"
    r1.set(key, "original")
    with r1.pipeline() as p:
        p.watch(key)
        seen = p.get(key)
        check(seen == "original", f"GET {key} after WATCH answered {seen!r}")
        r2.set(key, "other")
        p.multi()
        p.set(key, "mine")
        try:
            got = p.execute()
        except redis.WatchError:
            pass
        else:
            raise Failed(f"EXEC ran ({got!r}) though another master wrote the watched key; expected WatchError")
    check(r1.get(key) == "other", f"{key} is {r1.get(key)!r} after the aborted EXEC, expected 'other'")


def transfers(r1, r2, protocol):
    """Moves amounts between two keys of one hash tag from several threads through both
    masters with Redis.transaction (WATCH, GET both, MULTI, SET both, EXEC, again on
    WatchError): the sum is kept and every committed move counted exactly once."""
    a_key, b_key = "{acct}:a", "{acct}:b"
    r1.mset({a_key: 1000, b_key: 1000})
    moved, errors, retries = [], [], [0]
    lock = threading.Lock()
    deadline = time.monotonic() + TIMEOUT

    def worker(i):
        r = (r1, r2)[i % 2]
        rnd = random.Random(i)
        try:
            for n in range(TRANSFERS_PER_THREAD):
                amount = rnd.choice((-1, 1)) * rnd.randint(1, 10)
                runs = [0]

                def move(pipe):
                    runs[0] += 1
                    if time.monotonic() > deadline:
                        raise Failed(f"thread {i}: transfer {n} still retrying after {TIMEOUT} s ({runs[0]} runs)")
                    a = int(pipe.get(a_key))
                    b = int(pipe.get(b_key))
                    pipe.multi()
                    pipe.set(a_key, a - amount)
                    pipe.set(b_key, b + amount)

                got = r.transaction(move, a_key, b_key)
                check(got == [True, True], f"thread {i}: transaction() answered {got!r}, expected [True, True]")
                with lock:
                    moved.append(amount)
                    retries[0] += runs[0] - 1
        except Exception as e:  # reported by the main thread
            with lock:
                errors.append(f"thread {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5)
    check(not any(t.is_alive() for t in threads), f"transfer threads still running after {TIMEOUT} s")
    check(not errors, "; ".join(errors))
    check(len(moved) == THREADS * TRANSFERS_PER_THREAD, f"{len(moved)} transfers committed")
    net = sum(moved)
    for name, r in (("first", r1), ("second", r2)):
        def balances():
            a, b = int(r.get(a_key)), int(r.get(b_key))
            return (a, b) if (a, b) == (1000 - net, 1000 + net) else None

        try:
            eventually(f"the balances through the {name} master", balances)
        except Failed:
            a, b = int(r.get(a_key)), int(r.get(b_key))
            raise Failed(
                f"through the {name} master a={a} b={b} (sum {a + b}); expected a={1000 - net} b={1000 + net} "
                f"(sum 2000) after {len(moved)} committed transfers: a transfer was lost or applied twice"
            )
    print(f"      {len(moved)} transfers, {retries[0]} WatchError retries", flush=True)


def cross_slot(r1, r2, protocol):
    """A transaction over keys of two hash groups: CROSSSLOT, nothing written."""
    for key in ("xs:a", "xs:b"):
        r1.delete(key)
    p = r1.pipeline()
    p.set("xs:a", "1")
    p.set("xs:b", "2")
    try:
        got = p.execute()
    except redis.ResponseError as e:
        check("CROSSSLOT" in str(e) or isinstance(e, redis.exceptions.ClusterCrossSlotError), f"EXEC raised {e!r}")
    else:
        raise Failed(f"a transaction over xs:a and xs:b answered {got!r}, expected a CROSSSLOT error")
    check(r2.get("xs:a") is None and r2.get("xs:b") is None, "keys of a refused transaction were written")


def plain_pipeline(r1, r2, protocol):
    """pipeline(transaction=False): no MULTI, so keys of any groups."""
    for key in ("plain:x", "plain:y", "plain:z"):
        r2.delete(key)
    p = r2.pipeline(transaction=False)
    p.set("plain:x", "1")
    p.set("plain:y", "2")
    p.incr("plain:z")
    p.get("plain:x")
    p.mget("plain:x", "plain:y", "plain:none")
    got = p.execute()
    expected = [True, True, 1, "1", ["1", "2", None]]
    check(got == expected, f"pipeline(transaction=False) answered {got!r}, expected {expected!r}")
    check(r1.get("plain:y") == "2", f"plain:y through the other master is {r1.get('plain:y')!r}")


def scan(r1, r2, protocol):
    """scan_iter sees every key set (a walk over the whole cluster, in steps)."""
    prefix = f"scan{protocol}:"
    keys = {f"{prefix}{i}" for i in range(SCAN_KEYS)}
    p = r1.pipeline(transaction=False)
    for key in keys:
        p.set(key, "v")
    p.execute()
    last = [set()]

    def walk():
        last[0] = set(r2.scan_iter(match=f"{prefix}*", count=50))
        return last[0] == keys

    try:
        eventually("scan_iter to see every key", walk, timeout=10)
    except Failed:
        seen = last[0]
        raise Failed(
            f"scan_iter(match={prefix}*) saw {len(seen)} of {len(keys)} keys; missing e.g. "
            f"{sorted(keys - seen)[:5]}, unexpected {sorted(seen - keys)[:5]}"
        )
    everything = set(r1.scan_iter(count=100))
    check(keys <= everything, f"scan_iter() without a pattern missed {len(keys - everything)} keys")


def config_get(r1, r2, protocol):
    """CONFIG GET, which tools and libraries read on connect: a dict."""
    got = r1.config_get("maxmemory")
    check(isinstance(got, dict) and "maxmemory" in got, f"config_get('maxmemory') answered {got!r}")


CHECKS = [
    ("pipeline INCR + EXPIRE", pipeline_incr_expire),
    ("WATCH then another master's write: WatchError", watch_error),
    ("transaction() transfers from threads through both masters", transfers),
    ("a transaction over two hash groups: CROSSSLOT", cross_slot),
    ("pipeline(transaction=False)", plain_pipeline),
    ("scan_iter", scan),
    ("config_get", config_get),
]


def connect(port, protocol):
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        protocol=protocol,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
    )


def main():
    if len(sys.argv) != 3 or not all(a.isdigit() for a in sys.argv[1:]):
        print(__doc__, file=sys.stderr)
        return 2
    major = int(redis.__version__.split(".")[0])
    if major < 5:
        print(
            f"redis_py_transactions: redis-py {redis.__version__} is too old (5 or later: protocol=); "
            "run scripts/test.sh, which installs a recent one",
            file=sys.stderr,
        )
        return 1
    p1, p2 = int(sys.argv[1]), int(sys.argv[2])
    print(f"redis-py {redis.__version__} against 127.0.0.1:{p1} and 127.0.0.1:{p2}", flush=True)
    failures = []
    for protocol in (2, 3):
        r1, r2 = connect(p1, protocol), connect(p2, protocol)
        for name, run in CHECKS:
            started = time.monotonic()
            try:
                run(r1, r2, protocol)
            except Failed as e:
                failures.append(f"RESP{protocol} {name}: {e}")
                print(f"FAIL  RESP{protocol} {name}: {e}", flush=True)
            except Exception as e:
                failures.append(f"RESP{protocol} {name}: {type(e).__name__}: {e}")
                print(f"FAIL  RESP{protocol} {name}: {type(e).__name__}: {e}", flush=True)
                traceback.print_exc()
            else:
                print(f"ok    RESP{protocol} {name} ({time.monotonic() - started:.1f} s)", flush=True)
        r1.close()
        r2.close()
    if failures:
        print(f"redis_py_transactions: {len(failures)} of {2 * len(CHECKS)} checks failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    print(f"redis_py_transactions: all {2 * len(CHECKS)} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
