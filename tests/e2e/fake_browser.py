"""A browser for `airlock gcal auth` end to end (run through $BROWSER): it opens the
address, the local Google consents at once, and the redirect to 127.0.0.1 is followed."""

from __future__ import annotations

import sys

import httpx

if __name__ == "__main__":
    shown = httpx.get(sys.argv[1], follow_redirects=True, timeout=30)
    if shown.is_error:
        sys.exit(f"the browser shows {shown.status_code} {shown.reason_phrase}")
