"""What a reconcile pass writes: nothing when it finds everything as it was, not even
the holding baselines it measures again alike; a baseline that changed is written anew."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from core.execution.reconcile import Reconciler
from tests.integration.test_reconcile import open_long
from tests.storage.test_storage_write_statements import statements_of
from tests.tg_client import Rig

pytestmark = pytest.mark.integration


async def test_a_pass_that_finds_everything_as_it_was_writes_nothing(rig: Rig) -> None:
    await open_long(rig)
    await Reconciler(rig.client, rig.store, rig.clock).reconcile()  # measures the baselines
    measured = rig.store.holding_baselines()
    assert measured

    with statements_of(rig.store) as sent:
        report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()

    assert report.changes == [] and report.errors == []
    assert set(sent) == {"SELECT"}
    assert rig.store.holding_baselines() == measured


async def test_a_baseline_that_changed_is_written_anew(rig: Rig) -> None:
    await open_long(rig)
    await Reconciler(rig.client, rig.store, rig.clock).reconcile()
    measured = rig.store.holding_baselines()
    for baseline in measured.values():  # a surplus once seen, since explained
        rig.store.set_holding_baseline(replace(baseline, surplus=Decimal("0.001"), surplus_since=baseline.as_of))

    await Reconciler(rig.client, rig.store, rig.clock).reconcile()

    assert {asset: b.surplus_since for asset, b in rig.store.holding_baselines().items()} == dict.fromkeys(measured)
