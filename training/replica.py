"""A node's replica of the shared model and the rule that moves it from round to round.

Every participant holds the trainable tensors of the certified model and advances them by
applying exactly the contributions a round certificate names, with the weights it gives, in
canonical order (sorted by sender public key). The directions are regenerated from the seeds
each sender was assigned for the round, so the replica needs nothing but the certified
contributions themselves; the resulting model hash must match the certificate's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from protocol.apply import Update, apply_updates_
from protocol.codecs import Codec, contribution_updates
from protocol.domain_types import ModelHash
from protocol.errors import ConsensusError
from protocol.layout import ParamLayout
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.outer import momentum_names, nesterov_step_, state_hash
from protocol.perturb import DirectionKind, DirectionSpec
from protocol.quantize import QuantizedScalars, dequantize
from protocol.randomness import contribution_seeds, round_beacon

CertifiedEntry = tuple[Contribution, float]
"""One certified contribution and its weight (weights of a round usually sum to 1)."""

ScalarSource = Callable[[Contribution], Sequence[float]]
"""Where the applied scalars come from: the dequantized codes, except in research runs that
compare against unquantized scalars."""


@dataclass(frozen=True)
class ApplyRule:
    """The network-wide constants of the apply rule every replica must share."""

    network_id: str
    lr: float
    spec: DirectionSpec
    momentum: float = 0.0
    """Nesterov momentum of the outer step (protocol.outer); 0: plain SGD."""

    @classmethod
    def of(cls, network: NetworkConfig) -> ApplyRule:
        """The apply rule of ``network``."""
        return cls(network.network_id, network.outer_lr, network.direction,
                   network.outer_momentum)


def contribution_direction_spec(contribution: Contribution) -> DirectionSpec:
    """The direction family a contribution declares (it must equal the network's)."""
    return DirectionSpec(kind=DirectionKind(contribution.direction), rank=contribution.rank)


def contribution_scalars(contribution: Contribution) -> list[float]:
    """The dequantized scalars every replica (the sender's included) applies."""
    return dequantize(QuantizedScalars(scale=contribution.scale, codes=contribution.codes))


def canonical_order(entries: Sequence[CertifiedEntry]) -> list[CertifiedEntry]:
    """Entries sorted by sender public key bytes: the order every replica applies them in."""
    ordered = sorted(entries, key=lambda entry: entry[0].sender)
    senders = [c.sender for c, _ in ordered]
    if len(set(senders)) != len(senders):
        raise ConsensusError("a round certifies at most one contribution per sender")
    return ordered


def round_updates(
    rule: ApplyRule,
    round_index: int,
    prev_model_hash: ModelHash,
    entries: Sequence[CertifiedEntry],
    scalars_of: ScalarSource = contribution_scalars,
) -> list[Update]:
    """The canonical list of updates a certified round applies to the model ``prev_model_hash``."""
    beacon = round_beacon(rule.network_id, round_index)
    updates: list[Update] = []
    for contribution, weight in canonical_order(entries):
        _check_contribution(rule, round_index, prev_model_hash, contribution)
        seeds = contribution_seeds(
            rule.network_id, beacon, contribution.sender, round_index, len(contribution.codes)
        )
        updates.extend(
            contribution_updates(
                Codec(contribution.codec),
                seeds,
                scalars_of(contribution),
                contribution.block_counts,
                rule.lr,
                weight,
            )
        )
    return updates


def _check_contribution(
    rule: ApplyRule, round_index: int, prev_model_hash: ModelHash, contribution: Contribution
) -> None:
    if contribution.network_id != rule.network_id:
        raise ConsensusError(f"contribution for network {contribution.network_id!r}")
    if contribution.round_index != round_index:
        raise ConsensusError(
            f"contribution for round {contribution.round_index}, applying round {round_index}"
        )
    if contribution.base_model_hash != prev_model_hash:
        raise ConsensusError("contribution computed on a different base model")
    if contribution_direction_spec(contribution) != rule.spec:
        raise ConsensusError("contribution declares a direction family the network does not use")


class Replica:
    """The trainable tensors of one node's copy of the model, advanced round by round.

    ``named`` are the trainable tensors in canonical order; they are updated in place, so they
    may be the parameters of a live model (a miner's) or detached copies (a bare replica).
    Under outer momentum the replica also holds one momentum buffer per tensor (``buffers``,
    zero at genesis unless given), and ``model_hash`` is the state hash covering them.
    """

    def __init__(
        self,
        named: Sequence[tuple[str, torch.Tensor]],
        rule: ApplyRule,
        round_index: int = 0,
        buffers: Sequence[torch.Tensor] | None = None,
    ) -> None:
        self.named = list(named)
        self.layout = ParamLayout.of(self.named)
        self.rule = rule
        self.round_index = round_index
        self.buffers: list[torch.Tensor] = []
        if rule.momentum:
            self.buffers = (
                [torch.zeros_like(t) for t in self.tensors] if buffers is None
                else [b.detach().clone() for b in buffers]
            )
            for buf, t in zip(self.buffers, self.tensors, strict=True):
                if buf.shape != t.shape or buf.dtype != t.dtype:
                    raise ConsensusError("a momentum buffer does not match its tensor")
        elif buffers:
            raise ConsensusError("momentum buffers given to a network without outer momentum")
        self.model_hash = state_hash(self.named, self.buffers)

    @classmethod
    def detached_copy(
        cls,
        named: Sequence[tuple[str, torch.Tensor]],
        rule: ApplyRule,
        round_index: int = 0,
        buffers: Sequence[torch.Tensor] | None = None,
    ) -> Replica:
        """A replica on private copies of ``named`` (the source is left untouched)."""
        copies = [(name, t.detach().clone()) for name, t in named]
        return cls(copies, rule, round_index, buffers)

    def detached(self) -> Replica:
        """A private copy of this replica, momentum buffers included."""
        return Replica.detached_copy(self.named, self.rule, self.round_index, self.buffers)

    @property
    def tensors(self) -> list[torch.Tensor]:
        """The trainable tensors, in canonical order."""
        return [t for _, t in self.named]

    @property
    def named_buffers(self) -> list[tuple[str, torch.Tensor]]:
        """The momentum buffers by name (empty without outer momentum)."""
        names = momentum_names([name for name, _ in self.named])
        return list(zip(names, self.buffers, strict=True)) if self.buffers else []

    def load_state_(self, tensors: Sequence[torch.Tensor], buffers: Sequence[torch.Tensor],
                    round_index: int) -> None:
        """Overwrite the state in place (a reload from a checkpoint) and rehash it."""
        with torch.no_grad():
            for mine, saved in zip(self.tensors, tensors, strict=True):
                mine.copy_(saved)
            for mine, saved in zip(self.buffers, buffers, strict=True):
                mine.copy_(saved)
        self.round_index = round_index
        self.model_hash = state_hash(self.named, self.buffers)

    def apply_round(
        self,
        entries: Sequence[CertifiedEntry],
        expected_hash: ModelHash | None = None,
        *,
        scalars_of: ScalarSource = contribution_scalars,
    ) -> ModelHash:
        """Apply one certified round and return the new model hash.

        Raises ConsensusError when a contribution does not belong to this round and model, or
        when the result differs from ``expected_hash`` (the certificate's); the replica is then
        left in the state the certified updates produced, and must resync.
        """
        updates = round_updates(
            self.rule, self.round_index, self.model_hash, entries, scalars_of
        )
        with torch.no_grad():
            apply_outer_step_(self.tensors, self.buffers, self.layout, updates, self.rule)
        self.model_hash = state_hash(self.named, self.buffers)
        self.round_index += 1
        if expected_hash is not None and expected_hash != self.model_hash:
            raise ConsensusError(
                f"round {self.round_index - 1}: model hash {self.model_hash.hex()[:16]} "
                f"differs from the certified {expected_hash.hex()[:16]}"
            )
        return self.model_hash


def apply_outer_step_(
    params: Sequence[torch.Tensor],
    buffers: Sequence[torch.Tensor],
    layout: ParamLayout,
    updates: Sequence[Update],
    rule: ApplyRule,
) -> None:
    """Move ``params`` (and ``buffers``) by a round's updates under the outer step of ``rule``:
    the updates themselves (plain SGD) or their sum through Nesterov momentum (protocol.outer)."""
    if not rule.momentum:
        apply_updates_(params, layout, updates, rule.spec)
        return
    deltas = [torch.zeros_like(p) for p in params]
    apply_updates_(deltas, layout, updates, rule.spec)
    nesterov_step_(params, buffers, deltas, rule.momentum)
