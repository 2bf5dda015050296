"""The Lua of the upload benchmarks' wrk scripts (not a test): one prelude and one stop rule.

Every upload script (``bench_ingest.LUA``: prescriptions with new keys; ``world_stream.LUA``:
copies of a sample world) reads the access token from ``$BENCH_DIR/token.txt``, sends JSON
``POST``s with it, numbers wrk's threads (``id``, from 1) and counts its requests (``counter``);
with ``BENCH_LIMIT`` > 0 each thread stops after that many answers (``bench_ingest.wrk``'s
``limit``). :func:`script` wraps a script's own part — reading its templates and defining
``request()`` — in that prelude and stop rule.
"""

from __future__ import annotations

PRELUDE = r"""
local token = io.open(os.getenv("BENCH_DIR") .. "/token.txt"):read("*l")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["accessToken"] = token
local counter = 0
threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
"""

STOP_AFTER_LIMIT = r"""
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local answered = 0
if limit > 0 then
  function response(status, headers, body)
    answered = answered + 1
    if answered >= limit then wrk.thread:stop() end
  end
end
"""


def script(requests: str) -> str:
    """A wrk script: :data:`PRELUDE`, then ``requests`` (its templates and ``request()``, which
    may use ``token``, ``counter`` and ``id``), then :data:`STOP_AFTER_LIMIT`."""
    return PRELUDE + requests.strip("\n") + "\n" + STOP_AFTER_LIMIT
