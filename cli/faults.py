"""The faults a command may inject, checked before any work starts, and `tg sim faults`."""

from __future__ import annotations

from typing import Any


def check_faults(specs: list[str], *, tg_faults: bool) -> list[str]:
    """`specs` checked: each a sandbox fault (simulator.faults), or, with `tg_faults`,
    one of tg's own (db-fail, crash, foreign) or random; a bad one is one clear line."""
    from core.domain.errors import InputError
    from core.flows.simulation import RANDOM, TG_FAULTS, parse_tg_fault
    from simulator.faults import CATALOG, FaultSpecError, parse_spec

    own = {*TG_FAULTS, RANDOM} if tg_faults else set()
    for spec in specs:
        name = spec.partition(":")[0].strip()
        if name in own:
            parse_tg_fault(spec)
        elif name in CATALOG:
            try:
                parse_spec(spec)
            except FaultSpecError as exc:
                raise InputError(f"{exc} (see `tg sim faults`)") from None
        else:
            known = ", ".join([*CATALOG, *sorted(own)])
            raise InputError(f"unknown fault {name!r}; known: {known} (see `tg sim faults`)")
    return specs


def catalog() -> list[dict[str, Any]]:
    """Every fault with what it does, whose it is, and its options."""
    from core.flows.simulation import RANDOM, RANDOM_SUMMARY, TG_FAULTS
    from simulator.faults import CATALOG, option_docs, rule_option_docs

    rule_options = [{"name": o.name, "default": o.default, "accepts": o.accepts} for o in rule_option_docs()]
    listed: list[dict[str, Any]] = []
    for name, fault in CATALOG.items():
        defaults = fault.defaults
        options = [
            {"name": o.name, "default": o.default, "accepts": o.accepts} for o in option_docs(fault.params_model)
        ]
        listed.append(
            {
                "name": name,
                "by": "sandbox",
                "summary": defaults.summary,
                "options": options,
                "hits": {"endpoint": defaults.endpoint, "match": defaults.match, "times": defaults.times},
                "rule_options": rule_options,
            }
        )
    for name, (model, summary) in TG_FAULTS.items():
        options = [
            {
                "name": key,
                "default": "" if field.default is None else str(field.default),
                "accepts": (field.description or str(field.annotation)),
            }
            for key, field in model.model_fields.items()
        ]
        listed.append({"name": name, "by": "tg", "summary": summary, "options": options})
    listed.append({"name": RANDOM, "by": "tg", "summary": RANDOM_SUMMARY, "options": []})
    return listed
