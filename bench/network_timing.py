"""Per-round time marks of the live services, for bench.network's overhead decomposition.

The services are wrapped from outside (their code is not touched): every wrapped step records
`<step>_start` and `<step>_end` wall-clock marks (time.time(): one host clock, comparable across
processes) under the round it works on. Miner steps: produce, publish (its contribution),
arrival (a verified bundle offered to the follower), endorsement (the first endorsement kept
for the replica's round), apply, save (the checkpoint). Validator steps: score (its own
scoring of the round, `ValidatorService._score`'s engine call), vapply (`_certify` computing its
decision's model hash), bundle (publishing the certificate), vfollow (its follower applying the
final round: apply, checkpoint vsave, validation loss), book (ratings, ledger and receipts,
which the service writes once its driver is idle). A hook whose target is gone raises, so a
service change cannot silently blank a part of the decomposition.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.roundlog import TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS


@dataclass
class RoundMarks:
    """marks[event][round] = wall-clock seconds of the first time `event` happened there."""

    marks: dict[str, dict[int, float]] = field(default_factory=dict)

    def mark(self, event: str, round_index: int, at: float | None = None) -> None:
        """Record `event` for `round_index` (the first occurrence wins)."""
        self.marks.setdefault(event, {}).setdefault(round_index, time.time() if at is None else at)

    def to_json(self) -> dict[str, dict[str, float]]:
        return {e: {str(r): t for r, t in by_round.items()} for e, by_round in self.marks.items()}


def _timed(marks: RoundMarks, step: str, fn: Callable[..., Any],
           round_of: Callable[[], int]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        r = round_of()  # before the call: applying a round moves the replica on
        marks.mark(f"{step}_start", r)
        try:
            return fn(*args)
        finally:
            marks.mark(f"{step}_end", r)
    return wrapper


def _timed_async(marks: RoundMarks, step: str, fn: Callable[..., Awaitable[Any]],
                 round_of: Callable[[], int]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any) -> Any:
        r = round_of()
        marks.mark(f"{step}_start", r)
        try:
            return await fn(*args)
        finally:
            marks.mark(f"{step}_end", r)
    return wrapper


def _timed_publish(marks: RoundMarks, publish: Callable[[str, bytes], Awaitable[None]],
                   steps: dict[str, tuple[str, Callable[[], int]]]
                   ) -> Callable[[str, bytes], Awaitable[None]]:
    async def wrapper(topic: str, data: bytes) -> None:
        step = steps.get(topic)
        if step is None:
            await publish(topic, data)
            return
        name, round_of = step
        r = round_of()
        marks.mark(f"{name}_start", r)
        await publish(topic, data)
        marks.mark(f"{name}_end", r)
    return wrapper


def instrument_miner(service: Any, marks: RoundMarks, genesis: float) -> None:
    """Wrap a MinerService's work, publish, bundle intake, apply and checkpoint."""
    state, produce, follower = service.state, service.produce, service.follower
    _require(service, "produce", "transport")
    _require(follower, "offer")
    _require(state, "apply_bundle", "save")
    offer = follower.offer

    def timed_produce(s: Any) -> bytes:
        if time.time() < genesis:
            return b""  # the service's pre-genesis warm-up: the bench already ran it
        return bytes(_timed(marks, "produce", produce, lambda: s.round_index)(s))

    def timed_offer(bundle: Any) -> bool:
        kept = bool(offer(bundle))
        if kept:
            marks.mark("arrival", bundle.round_index)
        return kept

    service.produce = timed_produce
    follower.offer = timed_offer
    endorsement = getattr(follower, "receive_endorsement", None)
    if endorsement is not None:
        def timed_endorsement(*args: Any) -> bool:
            kept = bool(endorsement(*args))
            if kept:
                marks.mark("endorsement", state.round_index)
            return kept

        follower.receive_endorsement = timed_endorsement
    state.apply_bundle = _timed(marks, "apply", state.apply_bundle, lambda: state.round_index)
    state.save = _timed(marks, "save", state.save, lambda: state.round_index - 1)
    service.transport.publish = _timed_publish(
        marks, service.transport.publish, {TOPIC_CONTRIBUTIONS: ("publish",
                                                                 lambda: state.round_index)})


def instrument_validator(service: Any, marks: RoundMarks) -> None:
    """Wrap a ValidatorService's scoring, certifying (preview of its decision's model), the
    certificate's publish, its own apply of final rounds, checkpoint and post-round books.

    AttributeError if the service no longer has a step the decomposition relies on: a bench
    that silently stopped measuring a step would report a wrong decomposition."""
    engine, follower = service.engine, service.follower
    scored = [-1]  # the round the validator last scored: what it certifies and books next

    def round_of_score() -> int:
        scored[0] = engine.round_index
        return scored[0]

    def last_scored() -> int:
        return scored[0]

    _require(engine, "score", "preview", "save", "apply_bundle")
    _require(service, "_score", "_certify", "_book_pending", "_unbooked")
    _require(follower, "advance")
    engine.score = _timed(marks, "score", engine.score, round_of_score)
    engine.preview = _timed(marks, "vapply", engine.preview, last_scored)
    engine.save = _timed(marks, "vsave", engine.save, lambda: engine.round_index - 1)
    service.transport.publish = _timed_publish(
        marks, service.transport.publish, {TOPIC_BUNDLES: ("bundle", last_scored)})
    follower.advance = _timed_async(marks, "vfollow", follower.advance,
                                    lambda: engine.round_index)
    book = service._book_pending

    def timed_book() -> None:
        if not service._unbooked:
            book()  # the idle driver calls it every pass: only passes with work are marked
            return
        _timed(marks, "book", book, lambda: int(service._unbooked[0].round_index))()

    service._book_pending = timed_book


def _require(owner: Any, *names: str) -> None:
    missing = [n for n in names if not hasattr(owner, n)]
    if missing:
        raise AttributeError(f"bench.network_timing: {type(owner).__name__} has no "
                             f"{', '.join(missing)} any more; update the hooks")
