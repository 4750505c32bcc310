"""A/B of the first streamed token: two checkouts' daemons answering in turn.

One local OpenRouter; a daemon from each checkout (its own ``.venv``), each with service
``llm`` and a spend session; then, round after round, one call straight to the server and
one through each daemon (their order swapped every other round). Prints each side's p50
and the median of the paired differences, overall and by quarter of the run: on this
shared machine the figures of two separate runs differ by more than most changes do,
while calls a few milliseconds apart see the same machine.

    uv run python benchmarks/_ab_first_token.py CHECKOUT_A CHECKOUT_B [--rounds 400]

Not run by ``nox -s bench`` (it needs two checkouts).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
import pyotp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from airlock.clients.local_daemon import LocalDaemon
from airlock.security.totp import save_secret
from airlock.security.vault import TotpKey, Vault
from openrouter import CHAT, THROUGH, first_token, spend_session, start_server


def start(checkout: Path, api_base: str, key: str, home: Path) -> tuple[LocalDaemon, str]:
    llm = {"connector": "openrouter", "api_base": api_base, "models": ["test/*"]}
    config = {
        "services": {"llm": {**llm, "max_usd": 10_000}},
        "permissions": {"rate_limit": 100_000},
    }
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    python = checkout / ".venv" / "bin" / "python"
    daemon = LocalDaemon(home, command=[str(python), "-m", "airlock", "serve"])
    daemon.paths.ensure_data_dirs()
    secret = pyotp.random_base32()
    save_secret(daemon.paths.totp_file, secret)
    Vault(daemon.paths.vault_file, TotpKey(secret)).set("llm", {"api_key": key})
    daemon.start()
    with httpx.Client(
        transport=httpx.HTTPTransport(uds=str(daemon.paths.socket)),
        base_url="http://airlock",
        timeout=60,
    ) as client:
        token = spend_session(client, pyotp.TOTP(secret))
    return daemon, token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkouts", nargs=2, type=Path)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--model", default="test/cheap")
    args = parser.parse_args()
    key = "sk-or-v1-AB" + "0" * 32
    server, api_base = start_server(key)
    homes = [Path(tempfile.mkdtemp(prefix="airlock-ab-")) for _ in args.checkouts]
    daemons: list[LocalDaemon] = []
    try:
        sides = []
        for checkout, home in zip(args.checkouts, homes, strict=True):
            daemon, token = start(checkout.resolve(), api_base, key, home)
            daemons.append(daemon)
            client = httpx.Client(
                transport=httpx.HTTPTransport(uds=str(daemon.paths.socket)),
                base_url="http://airlock",
                timeout=60,
            )
            sides.append((client, token))
        direct = httpx.Client(timeout=60)
        streamed = {**CHAT, "model": args.model, "stream": True}
        upstream = {**streamed, "usage": {"include": True}}
        for client, token in sides:  # warm-up: the connector opens on the first call
            for _ in range(10):
                first_token(client, THROUGH, streamed, token)
        direct_s: list[float] = []
        timed: list[list[float]] = [[], []]
        for n in range(args.rounds):
            direct_s.append(first_token(direct, f"{api_base}/chat/completions", upstream, key))
            order = (0, 1) if n % 2 == 0 else (1, 0)
            for side in order:
                client, token = sides[side]
                timed[side].append(first_token(client, THROUGH, streamed, token))
        report(args.checkouts, direct_s, timed)
    finally:
        for daemon in daemons:
            daemon.stop()
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)


def report(checkouts: list[Path], direct: list[float], timed: list[list[float]]) -> None:
    d50 = statistics.median(direct) * 1000
    print(f"direct p50 {d50:.3f} ms (target through Airlock: {1.1 * d50 + 2:.3f} ms)")
    for checkout, samples in zip(checkouts, timed, strict=True):
        print(f"{checkout}: p50 {statistics.median(samples) * 1000:.3f} ms")
    diffs = [(a - b) * 1000 for a, b in zip(*timed, strict=True)]
    quarter = max(len(diffs) // 4, 1)
    parts = [statistics.median(diffs[i : i + quarter]) for i in range(0, len(diffs), quarter)]
    print(
        f"paired median difference (A - B): {statistics.median(diffs):.3f} ms; "
        f"by quarter: {', '.join(f'{p:.3f}' for p in parts[:4])}"
    )


if __name__ == "__main__":
    main()
