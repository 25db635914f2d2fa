"""``autohands pairing`` and ``autohands users``: approve strangers, and see or revoke who is in.

    autohands pairing list | approve CODE | deny CODE
    autohands users list [--channel NAME] | revoke CHANNEL USER_ID

They work beside a running hub (the database is the meeting point, as for ``autohands outbox``):
the hub reads the store's allow list for every sender its config does not let in, so an
approval or a revocation counts from that user's next message, without a restart.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .cli_base import Command, Parser
from .config import Settings
from .errors import StoreError

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when a command runs, not for every CLI start
    from .pairing import PairingService

APPROVED_BY_CLI = "cli"


def _add_pairing(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    pairing = sub.add_parser("pairing", parents=[common], help="approve or deny strangers' pairing codes")
    actions = pairing.add_subparsers(dest="pairing_command", metavar="ACTION", parser_class=Parser)
    actions.add_parser("list", parents=[common], help="list the pending pairing codes")
    approve = actions.add_parser("approve", parents=[common], help="let the code's user talk to the bot")
    approve.add_argument("code", metavar="CODE", help="the code the user was given")
    deny = actions.add_parser("deny", parents=[common], help="drop a pending code")
    deny.add_argument("code", metavar="CODE", help="the code the user was given")


def _add_users(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    users = sub.add_parser("users", parents=[common], help="users let in by approved pairings")
    actions = users.add_subparsers(dest="users_command", metavar="ACTION", parser_class=Parser)
    listing = actions.add_parser("list", parents=[common], help="list the users approved pairings let in")
    listing.add_argument("--channel", metavar="NAME", help="only this channel's")
    revoke = actions.add_parser("revoke", parents=[common], help="take a user off a channel's allow list")
    revoke.add_argument("channel", metavar="CHANNEL", help="the channel's name, as in [channels.NAME]")
    revoke.add_argument("user_id", metavar="USER_ID", help="the user's id, as 'autohands users list' shows it")


def _pairing(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    if args.pairing_command not in ("list", "approve", "deny"):
        parser.error("'pairing' needs an action: list, approve CODE or deny CODE")
    return asyncio.run(_with_service(settings, lambda service: _pairing_action(service, args)))


def _users(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    if args.users_command not in ("list", "revoke"):
        parser.error("'users' needs an action: list [--channel NAME] or revoke CHANNEL USER_ID")
    return asyncio.run(_with_service(settings, lambda service: _users_action(service, args)))


async def _with_service(settings: Settings, action: Callable[[PairingService], Awaitable[int]]) -> int:
    """Open the store without the one-hub lock (a hub may be running on it) and run ``action``."""
    from .pairing import pairing_for
    from .store import Store

    try:
        async with Store.from_settings(settings, lock=False) as store:
            return await action(pairing_for(store))
    except StoreError as exc:
        return _error(str(exc))


async def _pairing_action(service: PairingService, args: argparse.Namespace) -> int:
    from .pairing import describe_pending, normalize_code

    if args.pairing_command == "list":
        pending = await service.pending()
        if not pending:
            print("no pairing codes are pending")
        now = service.now()
        for p in pending:
            print(describe_pending(p, now))
        return 0
    code = normalize_code(args.code)
    if args.pairing_command == "deny":
        denied = await service.deny(code)
        if denied is None:
            return _no_such_code(code)
        print(f"denied {code} ({denied.channel}, id {denied.user_id})")
        return 0
    user = await service.approve(code, by=APPROVED_BY_CLI)
    if user is None:
        return _no_such_code(code)
    name = f"{user.display_name} " if user.display_name else ""
    print(f"approved {name}(id {user.user_id}) on {user.channel}: their next message will be answered")
    return 0


async def _users_action(service: PairingService, args: argparse.Namespace) -> int:
    from .pairing import describe_user

    if args.users_command == "list":
        users = await service.users(args.channel)
        if not users:
            print("no users were let in by pairing" + (f" on {args.channel}" if args.channel else ""))
        for u in users:
            print(describe_user(u))
        return 0
    if not await service.revoke(args.channel, args.user_id):
        return _error(
            f"no user {args.user_id} on {args.channel} was let in by pairing (see 'autohands users list'); "
            f"one in [channels.{args.channel}] allow_users is removed there"
        )
    print(f"revoked {args.user_id} on {args.channel}: from their next message they are a stranger again")
    return 0


def _no_such_code(code: str) -> int:
    return _error(f"no pending pairing code {code}: it may have expired or been used (see 'autohands pairing list')")


def _error(message: str) -> int:
    print(f"autohands: error: {message}", file=sys.stderr)
    return 1


PAIRING = Command("pairing", _add_pairing, _pairing)
USERS = Command("users", _add_users, _users)
