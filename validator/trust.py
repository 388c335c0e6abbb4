"""Audit trust: when an unaudited contribution may count as verified, what an audit costs a
cheater, and when earned reward is paid.

First-order contributions are audited only with some probability (a full audit redoes the
miner's local steps: about 100 % of its compute), so most rounds carry ``verified = None``:

* a miner is on **probation** until it has passed ``probation_audits`` audits; while on
  probation every contribution is audited (probability 1, ``audit_policy``) and an unaudited
  one never counts. A miner that cheats from its first round is therefore caught in that round
  and is never paid; an honest newcomer pays one full audit and is recognised at once.
* after probation it is audited with probability ``TrustPolicy.fo_probability(stake)``:
  ``min(1, max(fo_audit_probability, audit_budget · stake))``, ``stake`` its share of the
  round's reward at stake, so audits go where the money is; an unaudited contribution passes
  the verification gate iff the miner is not banned (a failure resets ``passed`` to 0, so a
  returning miner serves its probation again).
* what a round earns is **held** (``MinerBook.held``) until the miner passes an audit of that
  round or a later one, and only released score is paid (the pipeline's stage 6);
* a failed audit **bans** the identity for ``ban_rounds`` rounds (its contributions are refused
  before any compute is spent on them) and forfeits both its held score and its epoch's
  released score.

Why cheating does not pay: a miner that cheats in a fraction φ of its rounds gains at most
``φ s`` per round (``s`` its round reward: the compute it saves is worth less to a miner that
mines at a profit); each audit finds a cheating round with probability ``φ q`` and then takes
what is held (``s/p`` on average) and the epoch's released score (``s L/2``), an expected loss
of ``φ q s (1 + p L/2)`` per round: at least 1.35 times the gain at the 5 % floor with
``q = 0.9`` and ``L = 20`` (docs/architecture.md, "Audits a cheater cannot outwait"), before the
ban and the bond a ``FabricationProof`` lets validators slash. ``deterrence_ratio`` keeps the
older, ban-only bound (``p · ban_rounds`` rounds of reward per round cheated) >= 1. ZO
contributions are audited every round (a check costs ``n/K`` of the miner's work), so for them
the rule never has to trust anything and their reward is released as it is earned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from protocol.errors import ConfigError
from validator.verification import FO_AUDIT_PROBABILITY, DetectionTarget, VerificationPolicy

FO_DETECTION = DetectionTarget(rate=0.02, rounds=1, probability=0.9)
"""What one FO audit must catch: once the local steps are redone a scalar costs one projection,
so each audit checks enough scalars (114) to see a 2 % fabrication with probability 0.9."""


@dataclass(frozen=True)
class TrustPolicy:
    """Probation length, ban length, and the audit sampling of trusted FO miners.

    A trusted FO miner is audited with probability ``min(1, max(fo_audit_probability,
    audit_budget · stake))`` where ``stake`` is its share of the round's reward at stake (the
    positive values of the round's measured contributions): the validator spends about
    ``audit_budget`` full audits per round, where the money is.
    """

    probation_audits: int = 1
    ban_rounds: int = 200
    fo_audit_probability: float = FO_AUDIT_PROBABILITY
    audit_budget: float = 0.4
    fo_detection: DetectionTarget = FO_DETECTION

    def __post_init__(self) -> None:
        if self.probation_audits < 1 or self.ban_rounds < 1:
            raise ConfigError("probation_audits and ban_rounds must be >= 1")
        value = self.fo_audit_probability
        if not (math.isfinite(value) and 0.0 < value <= 1.0):
            raise ConfigError(f"fo_audit_probability must lie in (0, 1], got {value}")
        if not (math.isfinite(self.audit_budget) and self.audit_budget >= 0.0):
            raise ConfigError(f"audit_budget must be finite and >= 0, got {self.audit_budget}")
        if deterrence_ratio(self) < 1.0:
            raise ConfigError("audit probability x ban rounds must be >= 1; raise either "
                              "(see validator.trust)")

    def fo_probability(self, stake: float) -> float:
        """The audit probability of a trusted FO miner holding ``stake`` of the round's reward."""
        return min(1.0, max(self.fo_audit_probability, self.audit_budget * stake))


def deterrence_ratio(policy: TrustPolicy) -> float:
    """Expected rounds of reward lost per round cheated by a trusted FO miner at the audit
    floor, counting the ban only (the forfeited epoch and a slashed bond come on top)."""
    return policy.fo_audit_probability * policy.ban_rounds


@dataclass(frozen=True)
class AuditRecord:
    """What a validator remembers of a miner's audits."""

    passed: int = 0
    failed_round: int | None = None


def is_banned(record: AuditRecord, round_index: int, policy: TrustPolicy) -> bool:
    """True while the ban that followed the last failed audit runs."""
    failed = record.failed_round
    return failed is not None and round_index < failed + policy.ban_rounds


def on_probation(record: AuditRecord, policy: TrustPolicy) -> bool:
    """True until the miner has passed ``probation_audits`` audits since its last failure."""
    return record.passed < policy.probation_audits


def audit_policy(
    base: VerificationPolicy, record: AuditRecord, policy: TrustPolicy, codec: str,
    stake: float = 0.0,
) -> VerificationPolicy:
    """The verification policy for this miner's contribution of ``codec``, ``stake`` being its
    share of the round's reward at stake (``TrustPolicy.fo_probability``).

    Everything is audited while on probation. FO audits size their sample by
    ``fo_detection`` (one audit catches the target rate): once the local steps are redone a
    scalar costs one projection, so checking many makes partial cheating (some scalars
    replaced) nearly certain to be seen at little cost.
    """
    probability = 1.0 if on_probation(record, policy) else policy.fo_probability(stake)
    if codec != "fo":
        return replace(base, zo_audit_probability=1.0) if probability == 1.0 else base
    detection = policy.fo_detection
    if detection.sample_size < base.detection.sample_size:
        detection = base.detection
    return replace(base, fo_audit_probability=probability, detection=detection)


def passes_verification(
    verified: bool | None, record: AuditRecord, round_index: int, policy: TrustPolicy
) -> bool:
    """The verification gate: audited and passed, or unaudited from a trusted miner (one that
    is neither banned nor on probation: after a ban it must pass probation again)."""
    if verified is not None:
        return verified
    return not is_banned(record, round_index, policy) and not on_probation(record, policy)


def after_audit(record: AuditRecord, verified: bool | None, round_index: int) -> AuditRecord:
    """The record after this round's audit (unchanged when not audited)."""
    if verified is None:
        return record
    if verified:
        return replace(record, passed=record.passed + 1)
    return AuditRecord(passed=0, failed_round=round_index)
