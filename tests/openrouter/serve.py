"""The local OpenRouter in a process of its own, for the benchmark (a server in the
measuring process would share its interpreter lock with the client it is measured by).

    python -m tests.openrouter.serve < key      # prints its api_base, serves until stdin closes
"""

from __future__ import annotations

import sys

from tests.openrouter.openrouter_server import OpenRouterServer


def main() -> None:
    key = sys.stdin.readline().strip()
    server = OpenRouterServer(key=key)
    print(server.url, flush=True)
    try:
        sys.stdin.read()  # until the parent closes it (or dies)
    finally:
        server.close()


if __name__ == "__main__":
    main()
