"""``airlock signal setup``: check signal-cli-rest-api (or signal-cli's own socket), prove
both directions, save config.

It asks the REST API which mode it runs in and whether the sending number is registered
(signal-cli's socket: its version, and the accounts of a multi-account daemon), sends the
person a test message, and waits for their quote-reply to it: that proves the prompt
reaches them, that their answers come back, and from which Signal identity (the ACI is
saved too, for messages that hide the phone number). Signal needs no secret here: the
REST API listens on loopback without credentials, the socket lets in whom its
permissions do.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from airlock.plugin import ApprovalTimedOut, InvalidInput, NotifierError

if TYPE_CHECKING:
    from airlock.plugin import CliState
    from airlock_notify_signal._cli_socket import SignalCli
    from airlock_notify_signal._notifier import SignalSettings
    from airlock_notify_signal._rest_api import SignalRestApi

TEST_MESSAGE = (
    "Airlock: this is a test ({mark}). Quote-reply to this message (swipe it right) with "
    "any text to finish the setup. Approval prompts will arrive here."
)
"""Its ``{mark}`` is random: a quote-reply's copy of the quoted text holds it only when
the replier saw the message (see ``_reply_to``)."""


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Signal: approve requests through signal-cli-rest-api.", no_args_is_help=True
    )
    app.add_typer(group, name="signal")

    @group.command("setup")
    def setup(
        ctx: typer.Context,
        number: Annotated[
            str, typer.Option("--number", help="The account signal-cli sends from (+E.164).")
        ],
        recipient: Annotated[
            str, typer.Option("--recipient", help="Your own number, which answers (+E.164).")
        ],
        api_base: Annotated[
            str | None, typer.Option("--api-base", help="Where signal-cli-rest-api listens.")
        ] = None,
        socket: Annotated[
            str | None,
            typer.Option(
                "--socket",
                help="signal-cli's own JSON-RPC socket (signal-cli daemon --socket PATH), "
                "instead of signal-cli-rest-api.",
            ),
        ] = None,
        wait: Annotated[int, typer.Option("--wait", help="Seconds to wait for your reply.")] = 300,
        write_config: Annotated[
            bool, typer.Option("--write-config", help="Write the settings into config.yaml.")
        ] = False,
    ) -> None:
        """Check signal-cli, exchange a test message with you, then the config."""
        import asyncio

        from airlock.plugin import report_settings

        state: CliState = ctx.obj
        if socket is not None and api_base is not None:
            raise InvalidInput("give --socket or --api-base, not both", field="socket")
        settings = _settings(
            state, number=number, recipient=recipient, api_base=api_base, socket=socket
        )
        found = asyncio.run(_exchange(settings, wait))
        report_settings(state, "signal", found, write=write_config)


def _settings(
    state: CliState, *, number: str, recipient: str, api_base: str | None, socket: str | None
) -> SignalSettings:
    from pydantic import ValidationError

    from airlock.plugin import configured_api_base, first_problem
    from airlock_notify_signal._notifier import DEFAULT_API_BASE, SignalSettings

    raw: dict[str, Any] = {"number": number, "recipient": recipient}
    if socket is not None:
        raw["socket"] = socket
    else:
        raw["receive"] = "auto"
        raw["api_base"] = configured_api_base(state, "signal", api_base, DEFAULT_API_BASE)
    try:
        return SignalSettings.model_validate(raw)
    except ValidationError as exc:
        problem = first_problem(exc)
        raise InvalidInput(
            str(problem), field=problem.field, hint="numbers look like +15550001234"
        ) from None


async def _exchange(settings: SignalSettings, wait: int) -> dict[str, Any]:
    """The settings to save, once the person's quote-reply to a test message came back."""
    import asyncio

    from airlock.plugin import Backoff, api_base_setting
    from airlock_notify_signal._cli_socket import SignalCli
    from airlock_notify_signal._notifier import DEFAULT_API_BASE
    from airlock_notify_signal._receiving import Receiver
    from airlock_notify_signal._rest_api import SignalRestApi
    from airlock_notify_signal._waiting import Person

    backoff = Backoff(initial=1.0, maximum=5.0)
    person = Person(settings.recipient)  # their ACI is what the exchange finds out
    link: SignalCli | SignalRestApi
    items: Callable[[], AsyncGenerator[Any, None]]
    if settings.socket is not None:
        link = cli = SignalCli(settings.socket, settings.number, person=person)
        where: dict[str, Any] = {"socket": settings.socket}
        items = lambda: cli.items(backoff)  # noqa: E731 - one line, like the other branch
    else:
        link = api = SignalRestApi(settings.api_base, settings.number)
        where = api_base_setting(settings.api_base, DEFAULT_API_BASE)
        items = Receiver(api, backoff, mode="auto", wait=min(wait, 10), person=person).items
    try:
        await _check(link, settings)
        mark = f"{secrets.randbelow(10**4):04d}-{secrets.randbelow(10**4):04d}"
        sent = await link.send(settings.recipient, TEST_MESSAGE.format(mark=mark))
        typer.echo(f"sent a test message to {settings.recipient}: quote-reply to it in Signal")
        typer.echo(f"waiting up to {wait}s for your reply...")
        try:
            uuid = await asyncio.wait_for(_reply_to(items(), settings, sent, mark), wait)
        except TimeoutError:
            raise ApprovalTimedOut(
                f"no quote-reply to the test message arrived within {wait}s",
                hint="swipe the test message right to quote it, send any text, run it again",
            ) from None
    finally:
        backoff.close()
        await link.aclose()
    typer.echo("your reply came back: Signal works both ways")
    found: dict[str, Any] = {**where, "number": settings.number, "recipient": settings.recipient}
    if uuid:
        found["recipient_uuid"] = uuid
    return found


async def _check(link: SignalCli | SignalRestApi, settings: SignalSettings) -> None:
    """Say what answers, and refuse a number it does not have (when it can tell)."""
    from airlock.plugin import untrusted_line
    from airlock_notify_signal._cli_socket import METHOD_NOT_FOUND, SignalCli, SignalCliError

    if isinstance(link, SignalCli):
        typer.echo(f"signal-cli {await link.version()} answers at {link.path}")
        try:
            accounts = await link.call("listAccounts")
        except SignalCliError as exc:  # a single-account daemon lists none
            if exc.rpc_code != METHOD_NOT_FOUND:
                raise
            return
        listed = accounts if isinstance(accounts, list) else []
        numbers = [a.get("number") for a in listed if isinstance(a, dict)]
        if settings.number not in numbers:
            raise NotifierError(
                f"{settings.number} is not an account of this signal-cli",
                hint="register or link the number there first (see its README)",
            )
        return
    about = await link.about()
    version, mode = (untrusted_line(str(about.get(k, "?")), 40) for k in ("version", "mode"))
    typer.echo(f"signal-cli-rest-api {version} answers at {settings.api_base} (mode {mode})")
    if settings.number not in await link.accounts():
        raise NotifierError(
            f"{settings.number} is not registered in signal-cli-rest-api",
            hint="register or link the number there first (see its README)",
        )


async def _reply_to(
    items: AsyncGenerator[Any, None], settings: SignalSettings, sent: int, mark: str
) -> str | None:
    """The sender's ACI from the first quote-reply to the test message *sent*.

    Only the recipient got that message, so a quote of it is theirs, unless it names
    another number (Signal may hide the number, never show a wrong one). Anyone can
    quote a message by its timestamp, though, and the sender picks the quoted text: a
    stranger with a hidden number who guessed the timestamp (the time setup sent it)
    would be saved as the person. So the quoted text, which the person's app copies
    from the message it got, must hold the test message's random *mark*.
    """
    import contextlib

    async with contextlib.aclosing(items) as received:
        async for item in received:
            envelope = _object(item, "envelope")
            quote = _object(_object(envelope, "dataMessage"), "quote")
            number = envelope.get("sourceNumber")
            text = quote.get("text")
            seen = isinstance(text, str) and mark in text
            if quote.get("id") == sent and seen and number in (None, settings.recipient):
                uuid = envelope.get("sourceUuid")
                return str(uuid)[:64] if uuid else None
    return None


def _object(parent: Any, key: str) -> dict[str, Any]:
    """*parent*'s *key* when both are JSON objects, else an empty one: what signal-cli
    hands over is read with care."""
    child = parent.get(key) if isinstance(parent, dict) else None
    return child if isinstance(child, dict) else {}
