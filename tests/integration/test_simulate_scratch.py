"""A campaign's scratch folder: removed at its end, and, when the campaign was killed
outright and could not remove it, by the next campaign on the machine. A SIGKILLed
`tg simulate` used to leave its folder (its last run's databases, a megabyte) in the
temporary directory for good."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.flows.simulation import OWNER_FILE, SCRATCH_PREFIX, scratch_space

pytestmark = pytest.mark.integration

KILLED_IN_ITS_SCRATCH = """
import os, signal, sys
from pathlib import Path
from core.flows.simulation import scratch_space
with scratch_space(Path(sys.argv[1])) as folder:
    (folder / "run-0").mkdir()
    (folder / "run-0" / "tg.db").write_bytes(b"a run's database")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def leftover(parent: Path, name: str, owner: str | None) -> Path:
    folder = parent / f"{SCRATCH_PREFIX}{name}"
    folder.mkdir()
    if owner is not None:
        (folder / OWNER_FILE).write_text(owner)
    return folder


def test_a_killed_campaigns_folder_goes_with_the_next_campaign(tmp_path: Path) -> None:
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_ITS_SCRATCH, str(tmp_path)], check=False)
    assert killed.returncode == -signal.SIGKILL
    [left] = tmp_path.glob(f"{SCRATCH_PREFIX}*")
    assert (left / "run-0" / "tg.db").exists()

    with scratch_space(tmp_path) as folder:
        assert not left.exists()
        assert (folder / OWNER_FILE).read_text().split() == [socket.gethostname(), str(os.getpid())]
    assert list(tmp_path.iterdir()) == []  # and its own goes at its end


def test_only_folders_of_campaigns_known_gone_are_removed(tmp_path: Path) -> None:
    here = socket.gethostname()
    running = leftover(tmp_path, "running", f"{here} {os.getpid()}")  # a campaign at work beside this one
    elsewhere = leftover(tmp_path, "elsewhere", "another-host 1")  # a shared /tmp: its machine is asked nothing
    unowned = leftover(tmp_path, "unowned", None)  # not a campaign's, or one just being made
    garbled = leftover(tmp_path, "garbled", "not a pid")

    with scratch_space(tmp_path):
        pass

    assert all(f.exists() for f in (running, elsewhere, unowned, garbled))
