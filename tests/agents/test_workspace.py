"""Workspaces per user, conversation or shared; safe names; the guard on the root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agents.tools.file import read_file, write_file
from agents.tools.workspace import check_workspace_root, ensure_workspace, workspace_path
from hub.errors import ConfigError, ToolFailed
from hub.messages import ConversationRef, Sender

from .conftest_tools import call, make_ctx

GROUP = ConversationRef(channel="telegram", chat="-100123")
ALICE = Sender(id="alice")
BOB = Sender(id="bob")


def test_user_scope_separates_users_and_channels(tmp_path: Path) -> None:
    alice = workspace_path(tmp_path, "user", GROUP, ALICE)
    assert alice == tmp_path / "users" / "telegram" / "alice"
    assert workspace_path(tmp_path, "user", GROUP, BOB) != alice
    on_slack = workspace_path(tmp_path, "user", ConversationRef(channel="slack", chat="C1"), ALICE)
    assert on_slack != alice and on_slack.parent.name == "slack"
    other_chat = workspace_path(tmp_path, "user", ConversationRef(channel="telegram", chat="42"), ALICE)
    assert other_chat == alice  # the same person in another chat of the same channel


def test_conversation_scope_separates_conversations(tmp_path: Path) -> None:
    here = workspace_path(tmp_path, "conversation", GROUP, ALICE)
    assert here == workspace_path(tmp_path, "conversation", GROUP, BOB)
    assert here.parent == tmp_path / "conversations"
    thread = ConversationRef(channel="telegram", chat="-100123", thread="7")
    assert workspace_path(tmp_path, "conversation", thread, ALICE) != here


def test_shared_scope_is_the_root(tmp_path: Path) -> None:
    assert workspace_path(tmp_path, "shared", GROUP, ALICE) == tmp_path
    assert workspace_path(tmp_path, "shared", GROUP, BOB) == tmp_path


async def test_users_cannot_see_each_others_files(tmp_path: Path) -> None:
    alice = make_ctx(workspace_path(tmp_path, "user", GROUP, ALICE), sender=ALICE, conversation=GROUP)
    bob = make_ctx(workspace_path(tmp_path, "user", GROUP, BOB), sender=BOB, conversation=GROUP)
    await call(write_file, alice, path="notes.txt", content="alice's notes")
    with pytest.raises(ToolFailed, match="does not exist"):
        await call(read_file, bob, path="notes.txt")
    await call(write_file, bob, path="notes.txt", content="bob's")
    assert await call(read_file, alice, path="notes.txt") == "alice's notes"
    shared = make_ctx(workspace_path(tmp_path, "shared", GROUP, BOB), sender=BOB, conversation=GROUP)
    assert await call(read_file, shared, path="users/telegram/alice/notes.txt") == "alice's notes"


HOSTILE = ["../../x", "..", ".", "", "a/b", "a\\b", "a\x00b", "/etc", "ünïcödé", "用户", "x" * 5000, "Alice", "-rf"]


def test_hostile_ids_map_to_safe_distinct_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    names = set()
    for raw in [*HOSTILE, "alice"]:
        path = workspace_path(root, "user", ConversationRef(channel=raw, chat="1"), Sender(id=raw))
        channel, user = path.relative_to(root / "users").parts
        assert channel == user
        assert user not in ("", ".", "..") and "/" not in user and "\x00" not in user and "\\" not in user
        assert len(user.encode()) <= 64 and user == user.lower()
        real = ensure_workspace(path)
        assert real.is_relative_to(root.resolve()) and real.is_dir()
        names.add(user)
    assert len(names) == len(HOSTILE) + 1
    assert workspace_path(root, "user", GROUP, ALICE).name == "alice"  # plain ids stay readable


def test_an_id_cannot_claim_anothers_hashed_name(tmp_path: Path) -> None:
    hashed = workspace_path(tmp_path, "user", GROUP, Sender(id="Alice")).name
    assert "+" in hashed
    assert workspace_path(tmp_path, "user", GROUP, Sender(id=hashed)).name != hashed


def test_conversation_keys_are_safe(tmp_path: Path) -> None:
    hostile = ConversationRef(channel="..", chat="../../etc", thread="/")
    path = workspace_path(tmp_path, "conversation", hostile, ALICE)
    assert path.parent == tmp_path / "conversations" and path.name not in ("", ".", "..")
    assert "/" not in path.name
    plain = workspace_path(tmp_path, "conversation", ConversationRef(channel="etc", chat="x"), ALICE)
    assert plain != path


def test_ensure_workspace_is_private(tmp_path: Path) -> None:
    real = ensure_workspace(tmp_path / "root" / "users" / "telegram" / "alice")
    for level in (real, real.parent, real.parent.parent):
        assert stat.S_IMODE(level.stat().st_mode) & 0o077 == 0
    assert ensure_workspace(real) == real  # idempotent


@pytest.fixture
def hub_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ...]:
    home = tmp_path / "home"
    data_dir = home / ".autohands"
    config_file = home / ".config" / "autohands" / "config.toml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text("")
    data_dir.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return (data_dir, config_file, data_dir / "hub.db", home)


@pytest.mark.parametrize("root", ["~", "~/.autohands", "~/.config", "~/.config/autohands", "/", "~/link_home"])
def test_check_workspace_root_refuses_the_hubs_own_paths(hub_paths: tuple[Path, ...], root: str) -> None:
    home = hub_paths[-1]
    (home / "link_home").symlink_to(home)
    with pytest.raises(ConfigError, match=r"^tools\.workspace: .*point it at a folder that holds only workspaces"):
        check_workspace_root(Path(root), hub_paths)


@pytest.mark.parametrize("root", ["~/.autohands/workspaces", "~/autohands-workspaces", "~/.config/other"])
def test_check_workspace_root_accepts_folders_of_their_own(hub_paths: tuple[Path, ...], root: str) -> None:
    check_workspace_root(Path(root), hub_paths)
    check_workspace_root(Path(os.path.expanduser(root)), hub_paths)
