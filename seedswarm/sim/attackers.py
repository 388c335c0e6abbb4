"""The attack library: honest-looking miners that cheat, one class per known trick.

Each attacker signs well-formed contributions with its own registered key, for the right round
and the certified model hash: everything a fast filter can see looks honest. What each does
instead of the protocol's work (seeds and data assigned by the beacon, scalars computed on the
certified model):

==============  ===========================================================================
copycat         re-signs another miner's scalars of this round as its own
free-rider      publishes zeros (no work at all)
noise           publishes random scalars
scaled          honest scalars multiplied by ``λ = 3`` (a magnitude attack)
stale           re-publishes its previous round's scalars (no work this round)
desynced        computes honestly but on a model ``lag = 2`` rounds old, declaring the
                current hash (it publishes nothing until it has a lagged model)
lazy            computes on a fixed batch of its choosing instead of its assigned samples
sign-flip       honest scalars negated (poisoning: pushes the model uphill)
sybil           one operator, COUNT identities: one local computation on the union of the
                identities' data, projected onto every identity's seeds
seed-grinder    computes honestly, then publishes only its "best" half of the scalars (the
                largest in magnitude) and zeros the rest
fabricator-2    honest until it has passed probation (``honest_rounds = 2``), then negates
                2 % of its scalars every round (a partial fabricator that outwaits probation)
fabricator-10   the same with 10 %
round-up        computes honestly but always rounds each scalar's magnitude up to the next
                code level (a ~4.5 % larger update than the stochastic rounding it owes)
==============  ===========================================================================

Every attack that changes a scalar is caught when a validator recomputes it; the library's
tests (``tests/sim/test_attacks.py``) assert each is refused or weighted ~0 and the model
still learns. Attackers that need someone's work this round (copycat) must run after it:
``build_attackers`` puts them after the honest miners.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from node.honest_miner import HonestMiner, Miner
from protocol.codecs import Codec, allocate_blocks, block_norms, project_delta
from protocol.domain_types import PublicKey
from protocol.errors import ConfigError
from protocol.identity import NodeKey
from protocol.layout import ParamLayout
from protocol.messages import Contribution
from protocol.quantize import SIGN_BIT, TOP_CODE, levels
from protocol.signing import seal
from training.round_context import RoundContext
from training.tasks.task import Batch
from training.work import (
    RoundInfo,
    WorkConfig,
    concat_batches,
    local_adamw_delta,
    make_contribution,
    split_batches,
    zo_scalars,
)

Scalars = tuple[tuple[int, ...], list[float]]
"""Block counts (empty for ZO) and raw scalars."""


def _batches(ctx: RoundContext, indices: Sequence[int]) -> list[Batch]:
    parts = ctx.work.local_steps if ctx.work.codec is Codec.FO else 1
    return [ctx.task.train_batch(part) for part in split_batches(indices, parts)]


def compute_scalars(ctx: RoundContext, batches: Sequence[Batch], seeds: Sequence[int]) -> Scalars:
    """The protocol's work on ``batches`` for ``seeds``, on the model ``ctx.named`` holds now."""
    work = ctx.work
    if work.codec is Codec.ZO:
        batch = concat_batches(list(batches))
        return (), zo_scalars(ctx.model, ctx.named, batch, seeds, work.spsa_eps, work.direction)
    delta = local_adamw_delta(ctx.model, ctx.named, batches, work.local_lr, work.local_weight_decay)
    return project(ctx, delta, seeds)


def project(ctx: RoundContext, delta: Sequence[torch.Tensor], seeds: Sequence[int]) -> Scalars:
    """FO scalars of an update ``delta`` on ``seeds`` (blocks allocated as honest miners do)."""
    counts = tuple(allocate_blocks(block_norms(list(delta)), len(seeds)))
    layout = ParamLayout.of(ctx.named)
    return counts, project_delta(list(delta), layout, seeds, ctx.work.direction, counts)


def uniform_blocks(ctx: RoundContext, k: int) -> tuple[int, ...]:
    """Block counts spreading ``k`` scalars evenly (FO); empty for ZO."""
    if ctx.work.codec is Codec.ZO:
        return ()
    return tuple(allocate_blocks([1.0] * len(ctx.named), k))


class Attacker:
    """Common plumbing: a key, a sequence counter, and sealing of chosen scalars."""

    kind = "attacker"

    def __init__(self, key: NodeKey) -> None:
        self.key = key
        self.sequence = 0

    @property
    def me(self) -> PublicKey:
        return self.key.public.raw

    def honest(self, ctx: RoundContext) -> Scalars:
        """What an honest miner with this key would compute this round."""
        batches = _batches(ctx, ctx.assigned_samples(self.me))
        return compute_scalars(ctx, batches, ctx.seeds(self.me))

    def publish(self, ctx: RoundContext, scalars: Scalars) -> bytes:
        """Quantize, sign and return ``scalars`` as this round's contribution."""
        counts, values = scalars
        info = RoundInfo(ctx.network_id, ctx.round_index, ctx.base_model_hash,
                         tuple(ctx.seeds(self.me, len(values))))
        self.sequence += 1
        contribution = make_contribution(self.key, info, ctx.work, counts, values,
                                         sequence=self.sequence, compute_ms=0)
        return seal(contribution, self.key)

    def work(self, ctx: RoundContext) -> bytes:
        raise NotImplementedError


class Copycat(Attacker):
    """Re-signs ``victim``'s contribution of this round (codes, scale, blocks) as its own."""

    kind = "copycat"

    def __init__(self, key: NodeKey, victim: HonestMiner) -> None:
        super().__init__(key)
        self.victim = victim

    def work(self, ctx: RoundContext) -> bytes:
        last = self.victim.last
        if last is None or last.contribution.round_index != ctx.round_index:
            return FreeRider.work(self, ctx)  # type: ignore[arg-type]
        self.sequence += 1
        return resign(last.contribution, self.key, self.sequence)


def resign(contribution: Contribution, key: NodeKey, sequence: int) -> bytes:
    """``contribution``'s content (codes, scale, blocks) sealed as ``key``'s own message.

    What a copycat publishes: a well-formed, correctly signed contribution of the right round
    and model; only recomputing its scalars on the copier's own seeds can expose it.
    """
    return seal(replace(contribution, sender=key.public.raw, sequence=sequence), key)


class FreeRider(Attacker):
    """Publishes all-zero scalars: no work at all."""

    kind = "free-rider"

    def work(self, ctx: RoundContext) -> bytes:
        k = ctx.work.scalars
        return self.publish(ctx, (uniform_blocks(ctx, k), [0.0] * k))


class NoiseMiner(Attacker):
    """Publishes Gaussian noise of a plausible size."""

    kind = "noise"

    def __init__(self, key: NodeKey, std: float = 0.05) -> None:
        super().__init__(key)
        self.std = std

    def work(self, ctx: RoundContext) -> bytes:
        k = ctx.work.scalars
        seed = int.from_bytes(hashlib.blake2b(self.me + bytes([ctx.round_index % 256]),
                                              digest_size=8).digest(), "little") >> 1
        noise = torch.randn(k, generator=torch.Generator().manual_seed(seed)) * self.std
        return self.publish(ctx, (uniform_blocks(ctx, k), noise.tolist()))


class ScaledMiner(Attacker):
    """Honest scalars times ``factor`` (a larger share of the update than it earned)."""

    kind = "scaled"

    def __init__(self, key: NodeKey, factor: float = 3.0) -> None:
        super().__init__(key)
        self.factor = factor

    def work(self, ctx: RoundContext) -> bytes:
        counts, values = self.honest(ctx)
        return self.publish(ctx, (counts, [self.factor * v for v in values]))


class SignFlipMiner(ScaledMiner):
    """Honest scalars negated: every replica is pushed uphill on this miner's data."""

    kind = "sign-flip"

    def __init__(self, key: NodeKey) -> None:
        super().__init__(key, factor=-1.0)


class StaleMiner(Attacker):
    """Re-publishes its previous round's scalars; publishes nothing until it has some."""

    kind = "stale"

    def __init__(self, key: NodeKey) -> None:
        super().__init__(key)
        self.previous: Scalars | None = None

    def work(self, ctx: RoundContext) -> bytes:
        if self.previous is None:
            # One honest computation, kept for later; nothing is sent this round.
            self.previous = self.honest(ctx)
            return b""
        return self.publish(ctx, self.previous)


class DesyncedMiner(Attacker):
    """Computes on the model of ``lag`` rounds ago but declares the current hash."""

    kind = "desynced"

    def __init__(self, key: NodeKey, lag: int = 2) -> None:
        super().__init__(key)
        self.lag = lag
        self.snapshots: deque[list[torch.Tensor]] = deque(maxlen=lag + 1)

    def work(self, ctx: RoundContext) -> bytes:
        self.snapshots.append([t.detach().clone() for _, t in ctx.named])
        if len(self.snapshots) <= self.lag:
            return b""  # still catching up: nothing to send
        old = self.snapshots[0]
        params = [t for _, t in ctx.named]
        current = [p.detach().clone() for p in params]
        try:
            with torch.no_grad():
                for p, o in zip(params, old, strict=True):
                    p.copy_(o)
            scalars = self.honest(ctx)
        finally:
            with torch.no_grad():
                for p, c in zip(params, current, strict=True):
                    p.copy_(c)
        return self.publish(ctx, scalars)


class LazyMiner(Attacker):
    """Trains on a fixed batch of its choosing (the first samples) instead of its assignment."""

    kind = "lazy"

    def work(self, ctx: RoundContext) -> bytes:
        chosen = list(range(ctx.samples_per_miner))
        return self.publish(ctx, compute_scalars(ctx, _batches(ctx, chosen), ctx.seeds(self.me)))


class SybilOperator:
    """Does one local computation per round on the union of its identities' data."""

    def __init__(self) -> None:
        self.identities: list[SybilIdentity] = []
        self.round: int | None = None
        self.delta: list[torch.Tensor] = []
        self.batch: Batch | None = None

    def shared(self, ctx: RoundContext) -> None:
        if self.round == ctx.round_index:
            return
        indices = [i for s in self.identities for i in ctx.assigned_samples(s.me)]
        batches = _batches(ctx, indices)
        self.round = ctx.round_index
        if ctx.work.codec is Codec.ZO:
            self.batch = concat_batches(batches)
        else:
            work = ctx.work
            self.delta = local_adamw_delta(ctx.model, ctx.named, batches, work.local_lr,
                                           work.local_weight_decay)


class SybilIdentity(Attacker):
    """One of an operator's identities: publishes the shared computation on its own seeds."""

    kind = "sybil"

    def __init__(self, key: NodeKey, operator: SybilOperator) -> None:
        super().__init__(key)
        self.operator = operator
        operator.identities.append(self)

    def work(self, ctx: RoundContext) -> bytes:
        op = self.operator
        op.shared(ctx)
        seeds = ctx.seeds(self.me)
        if ctx.work.codec is Codec.ZO:
            assert op.batch is not None
            w = ctx.work
            values = zo_scalars(ctx.model, ctx.named, op.batch, seeds, w.spsa_eps, w.direction)
            return self.publish(ctx, ((), values))
        return self.publish(ctx, project(ctx, op.delta, seeds))


class SeedGrinder(Attacker):
    """Computes honestly, then keeps only the larger-magnitude half of its scalars."""

    kind = "seed-grinder"

    def __init__(self, key: NodeKey, keep: float = 0.5) -> None:
        super().__init__(key)
        self.keep = keep

    def work(self, ctx: RoundContext) -> bytes:
        counts, values = self.honest(ctx)
        ranked = sorted(range(len(values)), key=lambda i: -abs(values[i]))
        kept = set(ranked[: max(1, int(self.keep * len(values)))])
        return self.publish(ctx, (counts, [v if i in kept else 0.0 for i, v in enumerate(values)]))


class PartialFabricator(Attacker):
    """Honest for ``honest_rounds`` rounds of its own (its probation), then negates a fraction
    ``rate`` of its scalars each round, at indices it draws afresh every round."""

    def __init__(self, key: NodeKey, rate: float, honest_rounds: int = 2) -> None:
        super().__init__(key)
        self.rate = rate
        self.honest_rounds = honest_rounds
        self.rounds = 0
        self.kind = f"fabricator-{round(rate * 100)}"

    def work(self, ctx: RoundContext) -> bytes:
        counts, values = self.honest(ctx)
        self.rounds += 1
        if self.rounds <= self.honest_rounds:
            return self.publish(ctx, (counts, values))
        bad = max(1, round(self.rate * len(values)))
        digest = hashlib.blake2b(self.me + ctx.round_index.to_bytes(8, "little"),
                                 digest_size=8).digest()
        rng = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
        flipped = set(torch.randperm(len(values), generator=rng)[:bad].tolist())
        return self.publish(ctx, (counts, [-v if i in flipped else v
                                           for i, v in enumerate(values)]))


class RoundUpQuantizer(Attacker):
    """Computes honestly, then rounds every magnitude up to the next code level instead of
    tossing the coin the protocol assigns (a biased, larger update)."""

    kind = "round-up"

    def publish(self, ctx: RoundContext, scalars: Scalars) -> bytes:
        counts, values = scalars
        info = RoundInfo(ctx.network_id, ctx.round_index, ctx.base_model_hash,
                         tuple(ctx.seeds(self.me, len(values))))
        honest = make_contribution(self.key, info, ctx.work, counts, values,
                                   sequence=self.sequence + 1, compute_ms=0)
        table = levels(honest.scale) if honest.scale > 0.0 else []
        codes = bytearray()
        for v in values:
            low = bisect.bisect_right(table, abs(v)) - 1 if table else 0
            up = low if not table or low == TOP_CODE or table[low] == abs(v) else low + 1
            codes.append(up | SIGN_BIT if up and v < 0 else up)
        self.sequence += 1
        return seal(replace(honest, codes=bytes(codes)), self.key)

    def work(self, ctx: RoundContext) -> bytes:
        return self.publish(ctx, self.honest(ctx))


@dataclass(frozen=True)
class AttackSetup:
    """What an attacker factory may use: the honest miners (victims) and the work rules."""

    honest: Sequence[HonestMiner]
    work: WorkConfig


Factory = Callable[[Sequence[NodeKey], AttackSetup], list[Miner]]


def _each(make: Callable[[NodeKey], Miner]) -> Factory:
    return lambda keys, setup: [make(k) for k in keys]


def _copycats(keys: Sequence[NodeKey], setup: AttackSetup) -> list[Miner]:
    if not setup.honest:
        raise ConfigError("copycats need at least one honest miner to copy")
    return [Copycat(k, setup.honest[i % len(setup.honest)]) for i, k in enumerate(keys)]


def _sybils(keys: Sequence[NodeKey], setup: AttackSetup) -> list[Miner]:
    operator = SybilOperator()
    return [SybilIdentity(k, operator) for k in keys]


ATTACKS: dict[str, Factory] = {
    "copycat": _copycats,
    "free-rider": _each(FreeRider),
    "noise": _each(NoiseMiner),
    "scaled": _each(ScaledMiner),
    "stale": _each(StaleMiner),
    "desynced": _each(DesyncedMiner),
    "lazy": _each(LazyMiner),
    "sign-flip": _each(SignFlipMiner),
    "sybil": _sybils,
    "seed-grinder": _each(SeedGrinder),
    "fabricator-2": _each(lambda k: PartialFabricator(k, 0.02)),
    "fabricator-10": _each(lambda k: PartialFabricator(k, 0.10)),
    "round-up": _each(RoundUpQuantizer),
}

OUTWAITING = ("fabricator-2", "fabricator-10", "round-up")
"""Attackers that behave honestly enough to pass probation or every loose check (issue 15,
items 7 and 8): caught by the audit policy over rounds, not in their first round."""


def parse_attackers(text: str) -> tuple[tuple[str, int], ...]:
    """``"copycat=2,noise=1"`` as ((kind, count), ...); ConfigError names a bad entry."""
    out: list[tuple[str, int]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, count = part.partition("=")
        kind = kind.strip()
        if kind not in ATTACKS:
            raise ConfigError(f"unknown attacker {kind!r}; known: {', '.join(sorted(ATTACKS))}")
        try:
            n = int(count) if count else 1
        except ValueError as exc:
            raise ConfigError(f"attacker count for {kind!r} must be an integer") from exc
        if n < 1:
            raise ConfigError(f"attacker count for {kind!r} must be >= 1")
        out.append((kind, n))
    return tuple(out)


def build_attackers(
    spec: Sequence[tuple[str, int]], keys: Callable[[int], NodeKey], setup: AttackSetup
) -> list[Miner]:
    """The attackers of ``spec``, keyed ``keys(0), keys(1), ...`` in order."""
    miners: list[Miner] = []
    for kind, count in spec:
        own = [keys(len(miners) + i) for i in range(count)]
        miners += ATTACKS[kind](own, setup)
    return miners


def attacker_kind(miner: Miner) -> str | None:
    """The attack class of ``miner``, or None for an honest one."""
    return getattr(miner, "kind", None) if isinstance(miner, Attacker) else None
