"""Weight vectors as the contract takes them: uint16 per miner slot, summing to 65535."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_canonical_address
from eth_utils.crypto import keccak

from protocol.errors import InvalidWeights
from protocol.settlement.params import WEIGHT_SCALE


def normalize_weights(scores: Sequence[float], scale: int = WEIGHT_SCALE) -> tuple[int, ...]:
    """Integer weights proportional to `scores` that sum to exactly `scale`.

    Largest-remainder rounding in exact rational arithmetic, ties to the lower index, so every
    machine gets the same vector. Negative scores count as zero.
    """
    exact = [Fraction(max(float(s), 0.0)) for s in scores]
    total = sum(exact, Fraction(0))
    if total == 0:
        raise InvalidWeights("cannot normalise an all-zero score vector")
    shares = [x * scale / total for x in exact]
    floors = [int(s) for s in shares]
    missing = scale - sum(floors)
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:missing]:
        floors[i] += 1
    return tuple(floors)


def check_weights(weights: Sequence[int], max_miners: int) -> None:
    """Raises InvalidWeights unless the contract would accept `weights`."""
    if len(weights) > max_miners:
        raise InvalidWeights(f"{len(weights)} weights for {max_miners} miner slots")
    if any(not 0 <= w <= WEIGHT_SCALE for w in weights):
        raise InvalidWeights("weights must be uint16")
    if sum(weights) != WEIGHT_SCALE:
        raise InvalidWeights(f"weights sum to {sum(weights)}, not {WEIGHT_SCALE}")


def commit_digest(epoch: int, validator: str, weights: Sequence[int], salt: bytes) -> bytes:
    """keccak256(abi.encode(epoch, validator, weights, salt)), as Incentives.commitDigest."""
    encoded = abi_encode(
        ["uint256", "address", "uint16[]", "bytes32"],
        [epoch, to_canonical_address(validator), list(weights), salt],
    )
    return keccak(encoded)
