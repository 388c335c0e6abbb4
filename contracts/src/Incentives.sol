// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IMinerPerformance} from "./IMinerPerformance.sol";
import {Registry} from "./Registry.sol";
import {SeedswarmToken} from "./SeedswarmToken.sol";

/// @title Incentives
/// @notice Per-epoch rewards by stake-weighted consensus over the validators' weight vectors.
///
/// Timeline of epoch `e` (all times from the registry's schedule):
///   [end(e), end(e) + commitWindow)                    validators commit keccak(epoch, self, weights, salt)
///   [.. + commitWindow, .. + commitWindow + revealWindow)  validators reveal weights and salt
///   afterwards                                         anyone settles (directly, in chunks)
///
/// Direct settlement, Yuma-style, for each miner slot j over the validators i that revealed:
///   C_j = max { c : stake(i with w_ij >= c) * 10000 > kappaBps * S }     (S = revealed stake)
///   miner reward_j = minerPool * C_j / sum_k C_k                   (0 for all if the sum is 0)
///   validator trust T_i = sum_j min(w_ij, C_j) / 65535   (share of its weight that agreed)
///   validator reward_i  = validatorPool * S_i * T_i / sum_k S_k * T_k
/// The miner pool is split by the consensus weights themselves, renormalised over the slots, so
/// no weight is left unminted. With kappa = 1/2, a coalition holding less than half the stake
/// cannot move any C_j outside the range of the weights the rest gave slot j (more than half the
/// stake sits at or above their lowest, less than half above their highest): when the rest agree
/// on a miner it changes nothing, so it can neither lift a miner nor burn honest miners' pay by
/// voting against them. (Paying by the clipped stake-weighted sum R_j = sum_i S_i*min(w_ij, C_j),
/// even renormalised as Yuma does, would still let it cut the R_j of every miner it votes down by
/// its stake share, and renormalisation would hand that share to the miners it favours.)
/// A direct settlement therefore runs in two passes over the slots (each in chunks): the first
/// computes every C_j, the second pays once their sum is known.
/// Settlement needs a quorum: revealed stake must exceed half the registered validator stake,
/// otherwise the epoch closes with no emission.
///
/// Every stake figure of epoch `e` is taken as it stood at end(e) (the registry's history): a
/// validator commits and votes with its stake at end(e), the quorum and the Merkle majority are
/// measured against the total at end(e), and miner slot j is paid to whoever held it at end(e).
/// The voters of a direct settlement are exactly the accounts that revealed, recorded as they
/// reveal, not the validator set at settlement time: a validator evicted or deregistered after
/// end(e) keeps its vote (and its share of the validator pool) for `e`, and may still commit and
/// reveal for `e`, since its stake at end(e) is all that entitles it. Stake registered, added or
/// moved after the epoch ended, evictions and slot replacements after it ended, therefore cannot
/// cancel, swing or redirect that epoch's emission.
///
/// Merkle settlement: validators may instead vote for a root over leaves (epoch, account, amount)
/// computed off-chain, during [end(e), settlement opens); once one (root, total) has more than
/// half the validator stake it is final, and accounts claim with proofs. Its on-chain cost per
/// epoch does not depend on the miner count. An epoch is settled by exactly one of the two paths:
/// voting closes when direct settlement opens.
contract Incentives is IMinerPerformance {
    uint16 public constant WEIGHT_SCALE = type(uint16).max;
    uint16 private constant BPS = 10_000;

    struct EconomicParams {
        uint256 emissionPerEpoch;
        uint16 minerShareBps;
        uint16 kappaBps;
        uint32 commitWindow; // seconds
        uint32 revealWindow; // seconds
    }

    enum EpochStatus {
        Open,
        Settling,
        Settled,
        NoQuorum,
        MerkleSettled
    }

    struct Commitment {
        bytes32 digest;
        uint256 stake; // the validator's stake when it committed
        bool revealed;
    }

    struct DirectSettlement {
        uint16 cursor; // slots whose consensus weight is computed (first pass)
        uint16 paidCursor; // slots paid (second pass)
        uint16 minerCount;
        bool recordsPerformance;
        uint256 revealedStake;
        uint256 consensusTotal;
        uint256 minerPaid;
        address[] voters;
        uint256[] stakes;
        uint256[] clippedSums;
        uint16[] consensus;
    }

    struct MerkleSettlement {
        bytes32 root;
        uint256 total;
        uint256 claimed;
    }

    /// @dev Working set of one settlement chunk, kept in memory to avoid stack limits.
    struct Chunk {
        uint256 epoch;
        bool recordsPerformance;
        address[] voters;
        uint256[] stakes;
        uint256[] clipped;
        uint16[] column;
    }

    Registry private immutable _registry;
    SeedswarmToken private immutable _token;
    EconomicParams private _econ;

    mapping(uint256 epoch => mapping(address validator => Commitment)) private _commitments;
    mapping(uint256 epoch => mapping(address validator => uint16[])) private _weights;
    mapping(uint256 epoch => EpochStatus) private _status;
    mapping(uint256 epoch => DirectSettlement) private _direct;
    mapping(uint256 epoch => MerkleSettlement) private _merkle;
    mapping(uint256 epoch => mapping(address validator => bool)) private _rootVoted;
    mapping(uint256 epoch => mapping(bytes32 proposal => uint256 stake)) private _rootSupport;
    mapping(uint256 epoch => mapping(address account => bool)) private _merkleClaimed;
    mapping(address account => uint256) private _claimable;
    uint16[] private _performance;
    uint256 private _performanceEpoch;
    bool private _hasPerformance;

    event WeightsCommitted(uint256 indexed epoch, address indexed validator, bytes32 digest, uint256 stake);
    event WeightsRevealed(uint256 indexed epoch, address indexed validator, uint16[] weights);
    event SettlementStarted(uint256 indexed epoch, uint256 voters, uint256 revealedStake, uint256 miners);
    event MinerRewarded(
        uint256 indexed epoch, uint256 indexed slot, address indexed account, uint16 consensus, uint256 amount
    );
    event ValidatorRewarded(uint256 indexed epoch, address indexed validator, uint256 amount);
    event EpochSettled(uint256 indexed epoch, uint256 minerTotal, uint256 validatorTotal);
    event QuorumNotReached(uint256 indexed epoch, uint256 revealedStake, uint256 totalStake);
    event RootProposed(
        uint256 indexed epoch, address indexed validator, bytes32 root, uint256 total, uint256 support
    );
    event RootFinalized(uint256 indexed epoch, bytes32 root, uint256 total);
    event Claimed(address indexed account, uint256 amount);
    event MerkleClaimed(uint256 indexed epoch, address indexed account, uint256 amount);

    error InvalidEconomicParams();
    error NotValidator(address account);
    error CommitWindowNotOpen(uint256 epoch, uint256 opensAt);
    error CommitWindowClosed(uint256 epoch, uint256 closedAt);
    error AlreadyCommitted(uint256 epoch, address validator);
    error RevealWindowNotOpen(uint256 epoch, uint256 opensAt);
    error RevealWindowClosed(uint256 epoch, uint256 closedAt);
    error NoCommitment(uint256 epoch, address validator);
    error AlreadyRevealed(uint256 epoch, address validator);
    error RevealMismatch(bytes32 committed, bytes32 revealed);
    error TooManyWeights(uint256 length, uint256 maxMiners);
    error WeightsNotNormalized(uint256 sum);
    error SettlementNotOpen(uint256 epoch, uint256 opensAt);
    error EpochAlreadySettled(uint256 epoch, EpochStatus status);
    error EpochNotEnded(uint256 epoch, uint256 endsAt);
    error AlreadyVoted(uint256 epoch, address validator);
    error TotalExceedsEmission(uint256 total, uint256 emission);
    error NotMerkleSettled(uint256 epoch);
    error AlreadyClaimed(uint256 epoch, address account);
    error InvalidProof();
    error ClaimExceedsRoot(uint256 claimed, uint256 total);
    error NothingToClaim(address account);
    error LengthMismatch();
    error RootVotingClosed(uint256 epoch, uint256 closedAt);

    constructor(Registry registry_, SeedswarmToken token_, EconomicParams memory econ) {
        if (
            econ.minerShareBps > BPS || econ.kappaBps >= BPS || econ.commitWindow == 0
                || econ.revealWindow == 0
        ) revert InvalidEconomicParams();
        _registry = registry_;
        _token = token_;
        _econ = econ;
    }

    // ---------------------------------------------------------------- commit / reveal

    /// @notice Commits `digest` = commitDigest(epoch, msg.sender, weights, salt) for `epoch`,
    /// with the caller's validator stake at the epoch's end (it must have been a validator then).
    function commitWeights(uint256 epoch, bytes32 digest) external {
        (uint256 opens, uint256 closes,) = _windows(epoch);
        if (block.timestamp < opens) revert CommitWindowNotOpen(epoch, opens);
        if (block.timestamp >= closes) revert CommitWindowClosed(epoch, closes);
        uint256 stake = _epochStake(msg.sender, opens);
        Commitment storage c = _commitments[epoch][msg.sender];
        if (c.digest != bytes32(0)) revert AlreadyCommitted(epoch, msg.sender);
        c.digest = digest;
        c.stake = stake;
        emit WeightsCommitted(epoch, msg.sender, digest, stake);
    }

    /// @notice Reveals the committed weights: one uint16 per miner slot, summing to WEIGHT_SCALE
    /// (trailing zero slots may be omitted).
    function revealWeights(uint256 epoch, uint16[] calldata weights, bytes32 salt) external {
        (, uint256 opens, uint256 closes) = _windows(epoch);
        if (block.timestamp < opens) revert RevealWindowNotOpen(epoch, opens);
        if (block.timestamp >= closes) revert RevealWindowClosed(epoch, closes);
        Commitment storage c = _commitments[epoch][msg.sender];
        if (c.digest == bytes32(0)) revert NoCommitment(epoch, msg.sender);
        if (c.revealed) revert AlreadyRevealed(epoch, msg.sender);
        uint256 maxMiners = _registry.params().maxMiners;
        if (weights.length > maxMiners) revert TooManyWeights(weights.length, maxMiners);
        uint256 sum;
        for (uint256 i = 0; i < weights.length; ++i) {
            sum += weights[i];
        }
        if (sum != WEIGHT_SCALE) revert WeightsNotNormalized(sum);
        bytes32 digest = commitDigest(epoch, msg.sender, weights, salt);
        if (digest != c.digest) revert RevealMismatch(c.digest, digest);
        c.revealed = true;
        _weights[epoch][msg.sender] = weights;
        DirectSettlement storage d = _direct[epoch];
        d.voters.push(msg.sender);
        d.stakes.push(c.stake);
        emit WeightsRevealed(epoch, msg.sender, weights);
    }

    // ---------------------------------------------------------------- direct settlement

    /// @notice Does up to `maxMiners` more slot steps of `epoch`'s settlement (0 = all that
    /// remain); each slot takes two steps, one per pass. Anyone may call it once the reveal
    /// window has closed. Returns true when the epoch is done.
    function settle(uint256 epoch, uint256 maxMiners) external returns (bool finished) {
        EpochStatus status = _status[epoch];
        if (status == EpochStatus.Open) {
            (,, uint256 opensAt) = _windows(epoch);
            if (block.timestamp < opensAt) revert SettlementNotOpen(epoch, opensAt);
            if (!_startSettlement(epoch)) return true;
        } else if (status != EpochStatus.Settling) {
            revert EpochAlreadySettled(epoch, status);
        }
        DirectSettlement storage d = _direct[epoch];
        uint256 budget = maxMiners == 0 ? type(uint256).max : maxMiners;
        budget -= _scoreMiners(epoch, d, budget);
        if (d.cursor < d.minerCount) return false;
        _payMiners(epoch, d, budget);
        if (d.paidCursor < d.minerCount) return false;
        uint256 validatorTotal = _payValidators(epoch, d);
        _status[epoch] = EpochStatus.Settled;
        emit EpochSettled(epoch, d.minerPaid, validatorTotal);
        return true;
    }

    /// @notice Stake-weighted kappa-quantile from the top: the largest weight `c` such that the
    /// validators giving at least `c` hold more than kappaBps/10000 of the stake.
    function consensusWeight(uint16[] memory weights, uint256[] memory stakes, uint16 kappaBps)
        public
        pure
        returns (uint16 best)
    {
        uint256 n = weights.length;
        if (stakes.length != n) revert LengthMismatch();
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            total += stakes[i];
        }
        uint256 threshold = total * kappaBps;
        for (uint256 i = 0; i < n; ++i) {
            uint16 candidate = weights[i];
            if (candidate <= best) continue;
            uint256 support;
            for (uint256 k = 0; k < n; ++k) {
                if (weights[k] >= candidate) support += stakes[k];
            }
            if (support * BPS > threshold) best = candidate;
        }
    }

    /// @dev The voters are those that revealed (in reveal order), with their stakes at the
    /// epoch's end; nobody who joined, left or was evicted since can change them.
    function _startSettlement(uint256 epoch) private returns (bool quorate) {
        DirectSettlement storage d = _direct[epoch];
        uint256[] memory stakes = d.stakes;
        uint256 revealed;
        for (uint256 i = 0; i < stakes.length; ++i) {
            revealed += stakes[i];
        }
        uint256 total = _registry.totalValidatorStakeAt(_registry.epochEnd(epoch));
        if (revealed * 2 <= total) {
            _status[epoch] = EpochStatus.NoQuorum;
            emit QuorumNotReached(epoch, revealed, total);
            return false;
        }
        d.clippedSums = new uint256[](d.voters.length);
        d.revealedStake = revealed;
        d.minerCount = uint16(_registry.minerSlotCount());
        if (!_hasPerformance || epoch >= _performanceEpoch) {
            _hasPerformance = true;
            _performanceEpoch = epoch;
            d.recordsPerformance = true;
        }
        _status[epoch] = EpochStatus.Settling;
        emit SettlementStarted(epoch, d.voters.length, revealed, d.minerCount);
        return true;
    }

    /// @dev First pass: the consensus weight of up to `budget` more slots, and every voter's
    /// clipped sum; returns how many slots it did.
    function _scoreMiners(uint256 epoch, DirectSettlement storage d, uint256 budget)
        private
        returns (uint256 done)
    {
        uint256 start = d.cursor;
        uint256 end = d.minerCount;
        if (end - start > budget) end = start + budget;
        Chunk memory ck = Chunk({
            epoch: epoch,
            recordsPerformance: d.recordsPerformance,
            voters: d.voters,
            stakes: d.stakes,
            clipped: d.clippedSums,
            column: new uint16[](d.voters.length)
        });
        uint256 total;
        for (uint256 j = start; j < end; ++j) {
            uint16 consensus = _scoreMiner(ck, j);
            d.consensus.push(consensus);
            total += consensus;
        }
        d.cursor = uint16(end);
        d.consensusTotal += total;
        d.clippedSums = ck.clipped;
        return end - start;
    }

    function _scoreMiner(Chunk memory ck, uint256 slot) private returns (uint16 consensus) {
        uint256 n = ck.voters.length;
        for (uint256 i = 0; i < n; ++i) {
            uint16[] storage row = _weights[ck.epoch][ck.voters[i]];
            ck.column[i] = slot < row.length ? row[slot] : 0;
        }
        consensus = consensusWeight(ck.column, ck.stakes, _econ.kappaBps);
        for (uint256 i = 0; i < n; ++i) {
            ck.clipped[i] += ck.column[i] < consensus ? ck.column[i] : consensus;
        }
        if (ck.recordsPerformance) _setPerformance(slot, consensus);
    }

    /// @dev Second pass: pays up to `budget` more slots their consensus share of the miner pool,
    /// to whoever held each slot at the epoch's end (nothing for a slot that was free then).
    function _payMiners(uint256 epoch, DirectSettlement storage d, uint256 budget) private {
        uint256 start = d.paidCursor;
        uint256 end = d.minerCount;
        if (end - start > budget) end = start + budget;
        if (start == end) return;
        address[] memory owners = _registry.minersInRangeAt(start, end, _registry.epochEnd(epoch));
        uint256 pool = _minerPool();
        uint256 total = d.consensusTotal;
        uint256 paid;
        for (uint256 j = start; j < end; ++j) {
            uint16 consensus = d.consensus[j];
            address owner = owners[j - start];
            uint256 amount;
            if (owner != address(0) && total != 0) {
                amount = pool * consensus / total;
                if (amount != 0) _claimable[owner] += amount;
            }
            paid += amount;
            emit MinerRewarded(epoch, j, owner, consensus, amount);
        }
        d.paidCursor = uint16(end);
        d.minerPaid += paid;
    }

    function _payValidators(uint256 epoch, DirectSettlement storage d) private returns (uint256 paid) {
        uint256 pool = _econ.emissionPerEpoch - _minerPool();
        uint256 n = d.voters.length;
        uint256 denominator;
        for (uint256 i = 0; i < n; ++i) {
            denominator += d.stakes[i] * d.clippedSums[i];
        }
        if (denominator == 0) return 0;
        for (uint256 i = 0; i < n; ++i) {
            uint256 amount = pool * d.stakes[i] * d.clippedSums[i] / denominator;
            address validator = d.voters[i];
            _claimable[validator] += amount;
            paid += amount;
            emit ValidatorRewarded(epoch, validator, amount);
        }
    }

    function _setPerformance(uint256 slot, uint16 value) private {
        while (_performance.length <= slot) _performance.push(0);
        _performance[slot] = value;
    }

    // ---------------------------------------------------------------- Merkle settlement

    /// @notice Votes, with the caller's validator stake at the end of `epoch`, for paying `epoch`
    /// by the Merkle `root` whose leaves sum to `total`. Final once one proposal has more than half
    /// the validator stake at the epoch's end. Open until direct settlement opens.
    /// @dev Snapshot stakes make each unit of stake vote once: stake moved to another account
    /// after the epoch ended counts as zero there, and an account votes at most once.
    function proposeRoot(uint256 epoch, bytes32 root, uint256 total) external {
        (uint256 endsAt,, uint256 closesAt) = _windows(epoch);
        if (block.timestamp < endsAt) revert EpochNotEnded(epoch, endsAt);
        if (block.timestamp >= closesAt) revert RootVotingClosed(epoch, closesAt);
        uint256 stake = _epochStake(msg.sender, endsAt);
        EpochStatus status = _status[epoch];
        if (status != EpochStatus.Open) revert EpochAlreadySettled(epoch, status);
        if (total > _econ.emissionPerEpoch) revert TotalExceedsEmission(total, _econ.emissionPerEpoch);
        if (_rootVoted[epoch][msg.sender]) revert AlreadyVoted(epoch, msg.sender);
        _rootVoted[epoch][msg.sender] = true;
        bytes32 proposal = keccak256(abi.encode(root, total));
        uint256 support = _rootSupport[epoch][proposal] + stake;
        _rootSupport[epoch][proposal] = support;
        emit RootProposed(epoch, msg.sender, root, total, support);
        if (support * 2 > _registry.totalValidatorStakeAt(endsAt)) {
            _status[epoch] = EpochStatus.MerkleSettled;
            _merkle[epoch] = MerkleSettlement({root: root, total: total, claimed: 0});
            emit RootFinalized(epoch, root, total);
        }
    }

    /// @notice Mints `amount` to `account` for `epoch` given a proof of its leaf in the final root.
    function claimMerkle(uint256 epoch, address account, uint256 amount, bytes32[] calldata proof) external {
        if (_status[epoch] != EpochStatus.MerkleSettled) revert NotMerkleSettled(epoch);
        if (_merkleClaimed[epoch][account]) revert AlreadyClaimed(epoch, account);
        MerkleSettlement storage m = _merkle[epoch];
        if (!MerkleProof.verifyCalldata(proof, m.root, merkleLeaf(epoch, account, amount))) {
            revert InvalidProof();
        }
        uint256 claimed = m.claimed + amount;
        if (claimed > m.total) revert ClaimExceedsRoot(claimed, m.total);
        m.claimed = claimed;
        _merkleClaimed[epoch][account] = true;
        emit MerkleClaimed(epoch, account, amount);
        _token.mint(account, amount);
    }

    /// @notice Leaf hash: keccak256 twice over abi.encode(epoch, account, amount), so that no
    /// 64-byte inner node can pass for a leaf.
    function merkleLeaf(uint256 epoch, address account, uint256 amount) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(epoch, account, amount))));
    }

    // ---------------------------------------------------------------- claims

    /// @notice Mints the caller's credited rewards from directly settled epochs.
    function claim() external {
        uint256 amount = _claimable[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        delete _claimable[msg.sender];
        emit Claimed(msg.sender, amount);
        _token.mint(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    function commitDigest(uint256 epoch, address validator, uint16[] calldata weights, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(epoch, validator, weights, salt));
    }

    function registry() external view returns (address) {
        return address(_registry);
    }

    function token() external view returns (address) {
        return address(_token);
    }

    function economicParams() external view returns (EconomicParams memory) {
        return _econ;
    }

    /// @notice (commit opens, reveal opens, reveal closes = settlement opens) for `epoch`.
    function windows(uint256 epoch) external view returns (uint256, uint256, uint256) {
        return _windows(epoch);
    }

    function commitment(uint256 epoch, address validator) external view returns (Commitment memory) {
        return _commitments[epoch][validator];
    }

    function revealedWeights(uint256 epoch, address validator) external view returns (uint16[] memory) {
        return _weights[epoch][validator];
    }

    function epochStatus(uint256 epoch) external view returns (EpochStatus) {
        return _status[epoch];
    }

    /// @notice (cursor, miner slots, revealed stake, voter count) of a direct settlement.
    function settlementProgress(uint256 epoch) external view returns (uint256, uint256, uint256, uint256) {
        DirectSettlement storage d = _direct[epoch];
        return (d.cursor, d.minerCount, d.revealedStake, d.voters.length);
    }

    function merkleSettlement(uint256 epoch) external view returns (MerkleSettlement memory) {
        return _merkle[epoch];
    }

    function rootSupport(uint256 epoch, bytes32 root, uint256 total) external view returns (uint256) {
        return _rootSupport[epoch][keccak256(abi.encode(root, total))];
    }

    function isMerkleClaimed(uint256 epoch, address account) external view returns (bool) {
        return _merkleClaimed[epoch][account];
    }

    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    function minerPerformances() external view returns (uint16[] memory) {
        return _performance;
    }

    function performanceEpoch() external view returns (uint256) {
        return _performanceEpoch;
    }

    // ---------------------------------------------------------------- internals

    /// @dev `account`'s validator stake as of `epochEnd`; reverts for anyone who was not a
    /// validator when the epoch ended. Whether it still is one now does not matter: leaving or
    /// being evicted after the epoch ended must not take its say over that epoch away.
    function _epochStake(address account, uint256 epochEnd) private view returns (uint256 stake) {
        stake = _registry.validatorStakeAt(account, epochEnd);
        if (stake == 0) revert NotValidator(account);
    }

    function _minerPool() private view returns (uint256) {
        return _econ.emissionPerEpoch * _econ.minerShareBps / BPS;
    }

    function _windows(uint256 epoch) private view returns (uint256 commitOpens, uint256 revealOpens, uint256 revealCloses) {
        commitOpens = _registry.epochEnd(epoch);
        revealOpens = commitOpens + _econ.commitWindow;
        revealCloses = revealOpens + _econ.revealWindow;
    }
}
