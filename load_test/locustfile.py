"""Locust load test for tiercache, through NGINX (default http://localhost:8081).

Mix (weights): 80% GET, 15% PUT, 5% DELETE over a fixed key space; values of about 100 B,
1 KiB and 10 KiB. A GET of an absent key answers 404: that is a cache miss, not a failure, and
is reported under its own name ("... (miss)") so the hit ratio can be read from the stats.
Same for a DELETE of an absent key.

Tuning through environment variables:
  TIERCACHE_KEYS       size of the key space (default 10000)
  TIERCACHE_PREFIX     key prefix (default "locust:")
  TIERCACHE_TTL        ttl in seconds for PUTs, 0 = none (default 0)
  TIERCACHE_WAIT_MIN   seconds each user waits between requests, lower bound (default 0)
  TIERCACHE_WAIT_MAX   upper bound (default 0.1); 0 and 0 = as fast as possible
  TIERCACHE_PRELOAD    keys each user writes when it starts, to warm the cache (default 20)

  locust -f locustfile.py --host http://localhost:8081
"""

import os
import random
import string

from locust import FastHttpUser, between, events, task

KEYS = int(os.environ.get("TIERCACHE_KEYS", "10000"))
PREFIX = os.environ.get("TIERCACHE_PREFIX", "locust:")
TTL = int(os.environ.get("TIERCACHE_TTL", "0"))
WAIT_MIN = float(os.environ.get("TIERCACHE_WAIT_MIN", "0"))
WAIT_MAX = float(os.environ.get("TIERCACHE_WAIT_MAX", "0.1"))
PRELOAD = int(os.environ.get("TIERCACHE_PRELOAD", "20"))

# (size in bytes, weight): mostly small values, some 1 KiB, a few 10 KiB.
VALUE_SIZES = [(100, 70), (1024, 25), (10 * 1024, 5)]
_rng = random.Random(42)
# Pre-built payloads so the load generator spends its CPU on requests, not on random bytes.
VALUES = {
    size: [
        "".join(_rng.choices(string.ascii_letters + string.digits, k=size)).encode()
        for _ in range(8)
    ]
    for size, _ in VALUE_SIZES
}
SIZES = [s for s, _ in VALUE_SIZES]
SIZE_WEIGHTS = [w for _, w in VALUE_SIZES]
TTL_QUERY = f"?ttl={TTL}" if TTL > 0 else ""


def random_key() -> str:
    return f"{PREFIX}{random.randrange(KEYS)}"


def random_value() -> bytes:
    size = random.choices(SIZES, SIZE_WEIGHTS)[0]
    return random.choice(VALUES[size])


def judge(r, what: str, miss_name: str | None = None):
    """200 succeeds; a 404 succeeds too where a miss is a normal cache answer (reported under
    `miss_name`); anything else is a failure carrying the start of the body."""
    if r.status_code == 200:
        r.success()
    elif r.status_code == 404 and miss_name:
        r.request_meta["name"] = miss_name
        r.success()
    else:
        r.failure(f"{what} answered {r.status_code}: {(r.text or '')[:200]}")


class CacheUser(FastHttpUser):
    """One client of the cache: GETs, PUTs and DELETEs random keys."""

    wait_time = between(WAIT_MIN, WAIT_MAX)
    # Reuse connections like a real client would.
    concurrency = 1

    def on_start(self):
        for _ in range(PRELOAD):
            self._put(random_key(), random_value())

    def _put(self, key: str, value: bytes):
        # Raw body form: binary-safe and fine for 10 KiB values. Keys here need no escaping.
        with self.client.put(
            f"/cache/{key}{TTL_QUERY}",
            data=value,
            headers={"Content-Type": "application/octet-stream"},
            name="PUT /cache/{key}",
            catch_response=True,
        ) as r:
            judge(r, "PUT")

    @task(80)
    def get(self):
        key = random_key()
        with self.client.get(f"/cache/?key={key}", name="GET /cache/?key=", catch_response=True) as r:
            judge(r, "GET", miss_name="GET /cache/?key= (miss)")

    @task(12)
    def put_body(self):
        self._put(random_key(), random_value())

    @task(3)
    def put_query(self):
        # The query-string form, with a small value (it travels in the request line).
        key = random_key()
        value = random.choice(VALUES[100]).decode()
        ttl = f"&ttl={TTL}" if TTL > 0 else ""
        with self.client.put(
            f"/cache/?key={key}&value={value}{ttl}", name="PUT /cache/?key=&value=", catch_response=True
        ) as r:
            judge(r, "PUT")

    @task(5)
    def delete(self):
        key = random_key()
        with self.client.delete(f"/cache/{key}", name="DELETE /cache/{key}", catch_response=True) as r:
            judge(r, "DELETE", miss_name="DELETE /cache/{key} (miss)")


@events.quitting.add_listener
def _summary(environment, **_kwargs):
    """Prints the hit ratio of the GETs; exits non-zero on any failure (for CI)."""
    stats = environment.stats
    hits = stats.get("GET /cache/?key=", "GET").num_requests
    misses = stats.get("GET /cache/?key= (miss)", "GET").num_requests
    if hits + misses:
        print(f"tiercache: GET hit ratio {hits / (hits + misses):.3f} ({hits} hits, {misses} misses)")
    if stats.total.fail_ratio > 0:
        environment.process_exit_code = 1
