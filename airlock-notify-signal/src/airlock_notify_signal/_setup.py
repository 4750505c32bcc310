"""``airlock signal setup``: check signal-cli-rest-api, prove both directions, save config.

It asks the REST API which mode it runs in and whether the sending number is registered,
sends the person a test message, and waits for their quote-reply to it: that proves the
prompt reaches them, that their answers come back, and from which Signal identity (the
ACI is saved too, for messages that hide the phone number). Signal needs no secret here:
the REST API listens on loopback without credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from airlock.plugin import ApprovalTimedOut, InvalidInput, NotifierError

if TYPE_CHECKING:
    from airlock.plugin import CliState
    from airlock_notify_signal._notifier import SignalSettings
    from airlock_notify_signal._receiving import Receiver

TEST_MESSAGE = (
    "Airlock: this is a test. Quote-reply to this message (swipe it right) with any text "
    "to finish the setup. Approval prompts will arrive here."
)


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
        wait: Annotated[int, typer.Option("--wait", help="Seconds to wait for your reply.")] = 300,
        write_config: Annotated[
            bool, typer.Option("--write-config", help="Write the settings into config.yaml.")
        ] = False,
    ) -> None:
        """Check signal-cli-rest-api, exchange a test message with you, then the config."""
        import asyncio

        from airlock.plugin import report_settings

        state: CliState = ctx.obj
        settings = _settings(state, number=number, recipient=recipient, api_base=api_base)
        found = asyncio.run(_exchange(settings, wait))
        report_settings(state, "signal", found, write=write_config)


def _settings(
    state: CliState, *, number: str, recipient: str, api_base: str | None
) -> SignalSettings:
    from pydantic import ValidationError

    from airlock.plugin import configured_api_base, first_problem
    from airlock_notify_signal._notifier import DEFAULT_API_BASE, SignalSettings

    raw: dict[str, Any] = {
        "number": number,
        "recipient": recipient,
        "receive": "auto",
        "api_base": configured_api_base(state, "signal", api_base, DEFAULT_API_BASE),
    }
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
    from airlock_notify_signal._notifier import DEFAULT_API_BASE
    from airlock_notify_signal._receiving import Receiver
    from airlock_notify_signal._rest_api import SignalRestApi

    api = SignalRestApi(settings.api_base, settings.number)
    backoff = Backoff(initial=1.0, maximum=5.0)
    try:
        about = await api.about()
        typer.echo(
            f"signal-cli-rest-api {about.get('version', '?')} answers at {settings.api_base} "
            f"(mode {about.get('mode', '?')})"
        )
        if settings.number not in await api.accounts():
            raise NotifierError(
                f"{settings.number} is not registered in signal-cli-rest-api",
                hint="register or link the number there first (see its README)",
            )
        sent = await api.send(settings.recipient, TEST_MESSAGE)
        typer.echo(f"sent a test message to {settings.recipient}: quote-reply to it in Signal")
        typer.echo(f"waiting up to {wait}s for your reply...")
        receiver = Receiver(api, backoff, mode="auto", wait=min(wait, 10))
        try:
            uuid = await asyncio.wait_for(_reply_to(receiver, settings, sent), wait)
        except TimeoutError:
            raise ApprovalTimedOut(
                f"no quote-reply to the test message arrived within {wait}s",
                hint="swipe the test message right to quote it, send any text, run it again",
            ) from None
    finally:
        backoff.close()
        await api.aclose()
    typer.echo("your reply came back: Signal works both ways")
    found: dict[str, Any] = {
        **api_base_setting(settings.api_base, DEFAULT_API_BASE),
        "number": settings.number,
        "recipient": settings.recipient,
    }
    if uuid:
        found["recipient_uuid"] = uuid
    return found


async def _reply_to(receiver: Receiver, settings: SignalSettings, sent: int) -> str | None:
    """The sender's ACI from the first quote-reply to the test message *sent*.

    Only the recipient got that message, so a quote of it is theirs, unless it names
    another number (Signal may hide the number, never show a wrong one).
    """
    import contextlib

    async with contextlib.aclosing(receiver.items()) as items:
        async for item in items:
            envelope = item.get("envelope", {}) if isinstance(item, dict) else {}
            quote = (envelope.get("dataMessage") or {}).get("quote") or {}
            number = envelope.get("sourceNumber")
            if quote.get("id") == sent and number in (None, settings.recipient):
                uuid = envelope.get("sourceUuid")
                return str(uuid)[:64] if uuid else None
    return None
