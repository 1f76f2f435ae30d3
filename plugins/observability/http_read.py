"""One bounded GET, the way the plugin reads the services beside Airflow (Prometheus, Tempo): for the console's
pages, and for the impact a page names (impact.py).

Bounded as a whole, not only per socket wait: a server dripping its body would otherwise hold a page for ever.
No proxy from the environment: those services sit next to the api-server, and a proxy meant for the internet
would only stand in the way.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request

USER_AGENT = "airflow-observability/1"
_CHUNK = 1 << 16


class Unreachable(Exception):
    """No answer: refused, timed out, or cut short. The message is the reason, for the page to show."""


def bounded_get(url: str, timeout: float) -> tuple[int, bytes]:
    """(status, body) of a JSON GET within `timeout` seconds; an HTTP error's body is cut at 1000 bytes."""
    request = urllib.request.Request(  # noqa: S310 - callers pass the http(s) URLs of settings
        url, headers={"Accept": "application/json", "User-Agent": USER_AGENT}
    )
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            chunks = []
            while chunk := response.read1(_CHUNK):  # read() would wait for a full chunk
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise TimeoutError("body not complete in time")
            return response.status, b"".join(chunks)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(1000)
    except (OSError, http.client.HTTPException) as error:
        raise Unreachable(_reason(error, timeout)) from error


def _reason(error: BaseException, timeout: float) -> str:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):
        return f"no complete answer within {timeout:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror  # e.g. "Connection refused", without the errno noise
    return str(reason) or type(reason).__name__
