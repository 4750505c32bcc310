"""A browser for `airlock gcal auth` end to end (run through $BROWSER): it opens what it
is given (a local page forwards with a meta refresh, as a browser follows it), the local
Google consents at once, and the redirect to 127.0.0.1 is followed. With
``FAKE_BROWSER_ARGV`` set it appends its command line there, as every local user could
read it in /proc/PID/cmdline."""

from __future__ import annotations

import html
import os
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

if __name__ == "__main__":
    if seen := os.environ.get("FAKE_BROWSER_ARGV"):
        with open(seen, "a", encoding="utf-8") as out:
            out.write(" ".join(sys.argv) + "\n")
    address = sys.argv[1]
    if address.startswith("file://"):
        page = Path(unquote(urlsplit(address).path)).read_text(encoding="utf-8")
        found = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', page)
        if found is None:
            sys.exit("the page forwards nowhere")
        address = html.unescape(found.group(1))
    shown = httpx.get(address, follow_redirects=True, timeout=30)
    if shown.is_error:
        sys.exit(f"the browser shows {shown.status_code} {shown.reason_phrase}")
