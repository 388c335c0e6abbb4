// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {IMinerPerformance} from "./IMinerPerformance.sol";

/// @title Registry
/// @notice Who takes part in a seedswarm network, with how much stake, under which Ed25519 node
/// key; and the network's schedule (genesis time, round and epoch length, genesis model hash).
/// @dev Stake is native ETH. The reward token is minted only from settled rewards, so at genesis
/// nobody holds any: staking in it would leave the network with no way to bootstrap its first
/// participants. Native stake also keeps the sybil cost independent of the token's own price.
///
/// Miner slots are bounded; when they are all taken, a newcomer replaces the occupant with the
/// lowest performance in the last directly settled epoch (read from the incentives contract),
/// skipping occupants still inside their immunity period. The validator set is bounded too; when
/// full, a newcomer must stake strictly more than the smallest validator, who is replaced.
/// Leaving (or being replaced) moves the stake into unbonding for `unbondingDelay` seconds,
/// counted for a miner from the end of the epoch it leaves in.
///
/// Settlement of an epoch happens after the epoch has ended, while the sets keep changing. So
/// that late changes cannot rewrite a finished epoch, the registry keeps a timestamped history of
/// every validator's stake, of the total validator stake and of every miner slot's occupant; the
/// incentives contract reads them "as of" the epoch's end (the `...At` views).
///
/// Every checkpoint is keyed by the block's timestamp, clamped so that it never falls below the
/// history's latest key (`_push`). On a chain, mined blocks never go back in time and the clamp
/// does nothing; but a node may execute a call or a gas estimate in a block environment older
/// than the latest block (anvil's pending block under a loaded machine, a call with block
/// overrides), and OpenZeppelin's `push` would then revert with `CheckpointUnorderedInsertion`.
/// No registration, stake change or eviction may fail on the order of its checkpoints.
///
/// A miner's stake is a bond: it stays locked while the miner is registered and for
/// `unbondingDelay` seconds after the end of the epoch it leaves in, and a fabrication proven to a validator
/// stake-majority slashes it (`voteSlash`). Each validator votes for one (miner, epoch, evidence
/// hash), the evidence hash being the SHA-256 of the miner's signed contribution that the
/// recomputation contradicts, which any validator can check for itself. Votes weigh the stake
/// each voter held at the end of the accused epoch, against the total validator stake then, as
/// settlement counts its quorum, so stake moved after that epoch can neither pass nor block a
/// slash. When the votes pass half of that stake the whole bond (registered stake plus anything
/// still unbonding) is burned, the miner is deregistered and its node key is banned; coming back
/// under a new key costs a new bond. Slashed stake is burned, not paid to the voters or to the
/// reward pool, so that a majority gains nothing by framing a miner.
contract Registry is Ownable {
    using Checkpoints for Checkpoints.Trace256;

    enum Role {
        None,
        Miner,
        Validator
    }

    struct NetworkParams {
        uint64 genesisTime;
        uint32 roundLength; // seconds
        uint32 epochLength; // rounds per epoch
        bytes32 genesisModelHash;
        uint128 minMinerStake;
        uint128 minValidatorStake;
        uint64 unbondingDelay; // seconds
        uint16 maxMiners;
        uint16 maxValidators;
        uint16 immunityEpochs;
    }

    struct Participant {
        Role role;
        uint16 index; // miner slot, or position in the validator list
        uint64 registeredEpoch;
        bytes32 nodeKey;
        uint256 stake;
    }

    struct Unbonding {
        uint256 amount;
        uint64 releaseTime;
    }

    /// @notice Hard caps that keep settlement loops within a block.
    uint16 public constant MAX_MINER_SLOTS = 1024;
    uint16 public constant MAX_VALIDATORS = 64;

    NetworkParams private _params;
    IMinerPerformance private _incentives;
    mapping(address account => Participant) private _participants;
    mapping(bytes32 nodeKey => address account) private _nodeKeyOwner;
    mapping(address account => Unbonding) private _unbonding;
    address[] private _minerSlots;
    uint16[] private _freeSlots;
    address[] private _validators;
    uint256 private _totalValidatorStake;
    Checkpoints.Trace256 private _totalStakeHistory;
    mapping(address account => Checkpoints.Trace256) private _validatorStakeHistory;
    mapping(uint256 slot => Checkpoints.Trace256) private _slotHistory;
    mapping(address account => bytes32 nodeKey) private _bondKey; // the key a miner bond was posted under
    mapping(bytes32 nodeKey => bool) private _bannedNodeKeys;
    mapping(bytes32 accusation => uint256 stake) private _slashSupport;
    mapping(bytes32 accusation => mapping(address validator => bool)) private _slashVoted;
    mapping(bytes32 accusation => bool) private _slashDone;
    uint256 private _totalSlashed;

    event MinerRegistered(address indexed account, uint16 indexed slot, bytes32 nodeKey, uint256 stake);
    event ValidatorRegistered(address indexed account, bytes32 nodeKey, uint256 stake);
    event MinerReplaced(uint16 indexed slot, address indexed evicted, address indexed newcomer);
    event ValidatorReplaced(address indexed evicted, address indexed newcomer);
    event StakeAdded(address indexed account, uint256 amount, uint256 newStake);
    event UnbondingStarted(address indexed account, Role role, uint256 amount, uint64 releaseTime);
    event Withdrawn(address indexed account, uint256 amount);
    event IncentivesBound(address indexed incentives);
    event SlashVoted(
        address indexed miner, uint256 indexed epoch, bytes32 evidenceHash, address indexed validator,
        uint256 stake, uint256 support
    );
    event MinerSlashed(address indexed miner, uint256 indexed epoch, bytes32 evidenceHash, bytes32 nodeKey, uint256 burned);

    error InvalidNetworkParams();
    error AlreadyRegistered(address account);
    error NotRegistered(address account);
    error ZeroNodeKey();
    error NodeKeyTaken(bytes32 nodeKey, address owner);
    error InsufficientStake(uint256 given, uint256 required);
    error ZeroAmount();
    error NoReplaceableMiner();
    error ValidatorSetFull(uint256 lowestStake);
    error NothingToWithdraw(address account);
    error StillUnbonding(uint64 releaseTime);
    error TransferFailed();
    error ZeroAddress();
    error ZeroImmunity();
    error NotValidator(address account);
    error NotSlashable(address account);
    error EpochNotEnded(uint256 epoch, uint256 endsAt);
    error AlreadyVotedSlash(address miner, uint256 epoch, address validator);
    error AlreadySlashed(address miner, uint256 epoch, bytes32 evidenceHash);
    error NodeKeyBanned(bytes32 nodeKey);
    error ZeroEvidence();

    constructor(NetworkParams memory params_, address initialOwner) Ownable(initialOwner) {
        if (
            params_.roundLength == 0 || params_.epochLength == 0 || params_.maxMiners == 0
                || params_.maxMiners > MAX_MINER_SLOTS || params_.maxValidators == 0
                || params_.maxValidators > MAX_VALIDATORS
        ) revert InvalidNetworkParams();
        // With no immunity a newcomer could be evicted in the very transaction after it joined,
        // before any validator has had a chance to score it.
        if (params_.immunityEpochs == 0) revert ZeroImmunity();
        _params = params_;
    }

    // ---------------------------------------------------------------- administration

    /// @notice Binds the incentives contract (the performance source) once, then renounces
    /// ownership so the binding can never change.
    function bindIncentives(IMinerPerformance incentives_) external onlyOwner {
        if (address(incentives_) == address(0)) revert ZeroAddress();
        _incentives = incentives_;
        emit IncentivesBound(address(incentives_));
        _transferOwnership(address(0));
    }

    // ---------------------------------------------------------------- participation

    /// @notice Registers the caller as a miner bound to `nodeKey`, staking `msg.value`.
    function registerMiner(bytes32 nodeKey) external payable {
        _checkNewcomer(nodeKey, _params.minMinerStake);
        uint16 slot = _takeMinerSlot();
        _admit(Role.Miner, slot, nodeKey);
        _setMinerSlot(slot, msg.sender);
        _bondKey[msg.sender] = nodeKey;
        emit MinerRegistered(msg.sender, slot, nodeKey, msg.value);
    }

    /// @notice Registers the caller as a validator bound to `nodeKey`, staking `msg.value`.
    function registerValidator(bytes32 nodeKey) external payable {
        _checkNewcomer(nodeKey, _params.minValidatorStake);
        if (_validators.length >= _params.maxValidators) _replaceSmallestValidator();
        _admit(Role.Validator, uint16(_validators.length), nodeKey);
        _validators.push(msg.sender);
        delete _bondKey[msg.sender]; // stake unbonding from here on is a validator's, not a bond
        _recordValidatorStake(msg.sender, msg.value);
        _setTotalValidatorStake(_totalValidatorStake + msg.value);
        emit ValidatorRegistered(msg.sender, nodeKey, msg.value);
    }

    /// @notice Adds `msg.value` to the caller's stake.
    function addStake() external payable {
        Participant storage p = _participants[msg.sender];
        if (p.role == Role.None) revert NotRegistered(msg.sender);
        if (msg.value == 0) revert ZeroAmount();
        p.stake += msg.value;
        if (p.role == Role.Validator) {
            _recordValidatorStake(msg.sender, p.stake);
            _setTotalValidatorStake(_totalValidatorStake + msg.value);
        }
        emit StakeAdded(msg.sender, msg.value, p.stake);
    }

    /// @notice Leaves the network; the stake becomes withdrawable after the unbonding delay.
    function deregister() external {
        Participant storage p = _participants[msg.sender];
        if (p.role == Role.Miner) {
            _setMinerSlot(p.index, address(0));
            _freeSlots.push(p.index);
        } else if (p.role == Role.Validator) {
            _removeValidator(msg.sender);
        } else {
            revert NotRegistered(msg.sender);
        }
        _release(msg.sender);
    }

    /// @notice Pays out the caller's unbonded stake once its release time has passed.
    function withdraw() external {
        Unbonding memory u = _unbonding[msg.sender];
        if (u.amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < u.releaseTime) revert StillUnbonding(u.releaseTime);
        delete _unbonding[msg.sender];
        emit Withdrawn(msg.sender, u.amount);
        (bool ok,) = payable(msg.sender).call{value: u.amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @notice Votes, as a validator, that `miner` fabricated a contribution in `epoch`, proven by
    /// the contribution whose signed bytes hash (SHA-256) to `evidenceHash`. The vote weighs the
    /// caller's validator stake at the end of `epoch`; when the support for this (miner, epoch,
    /// evidence) passes half of the total validator stake at that time, the miner's bond is
    /// burned, the miner deregistered and its node key banned (`MinerSlashed`).
    /// @dev A miner stays slashable while registered and while any stake of its bond is still
    /// unbonding; the unbonding delay is the time validators have to prove a fabrication.
    /// @return slashed Whether this vote completed the slash.
    function voteSlash(address miner, uint256 epoch, bytes32 evidenceHash) external returns (bool slashed) {
        if (evidenceHash == bytes32(0)) revert ZeroEvidence();
        uint256 end = epochStart(epoch + 1);
        if (block.timestamp < end) revert EpochNotEnded(epoch, end);
        uint256 stake = _validatorStakeHistory[msg.sender].upperLookupRecent(end - 1);
        if (stake == 0) revert NotValidator(msg.sender);
        bytes32 accusation = slashAccusation(miner, epoch, evidenceHash);
        if (_slashDone[accusation]) revert AlreadySlashed(miner, epoch, evidenceHash);
        if (!_slashable(miner)) revert NotSlashable(miner);
        if (_slashVoted[accusation][msg.sender]) revert AlreadyVotedSlash(miner, epoch, msg.sender);
        _slashVoted[accusation][msg.sender] = true;
        uint256 support = _slashSupport[accusation] + stake;
        _slashSupport[accusation] = support;
        emit SlashVoted(miner, epoch, evidenceHash, msg.sender, stake, support);
        if (support * 2 <= _totalStakeHistory.upperLookupRecent(end - 1)) return false;
        _slashDone[accusation] = true;
        _slash(miner, epoch, evidenceHash);
        return true;
    }

    // ---------------------------------------------------------------- views

    function params() external view returns (NetworkParams memory) {
        return _params;
    }

    function incentives() external view returns (address) {
        return address(_incentives);
    }

    function epochDuration() public view returns (uint256) {
        return uint256(_params.roundLength) * _params.epochLength;
    }

    /// @notice Epoch containing timestamp `ts`; times before genesis count as epoch 0.
    function epochAt(uint256 ts) public view returns (uint256) {
        if (ts <= _params.genesisTime) return 0;
        return (ts - _params.genesisTime) / epochDuration();
    }

    function currentEpoch() public view returns (uint256) {
        return epochAt(block.timestamp);
    }

    function epochStart(uint256 epoch) public view returns (uint256) {
        return uint256(_params.genesisTime) + epoch * epochDuration();
    }

    function epochEnd(uint256 epoch) external view returns (uint256) {
        return epochStart(epoch + 1);
    }

    function participant(address account) external view returns (Participant memory) {
        return _participants[account];
    }

    function roleOf(address account) external view returns (Role) {
        return _participants[account].role;
    }

    function stakeOf(address account) external view returns (uint256) {
        return _participants[account].stake;
    }

    function nodeKeyOf(address account) external view returns (bytes32) {
        return _participants[account].nodeKey;
    }

    function accountOfNodeKey(bytes32 nodeKey) external view returns (address) {
        return _nodeKeyOwner[nodeKey];
    }

    function unbondingOf(address account) external view returns (uint256 amount, uint64 releaseTime) {
        Unbonding memory u = _unbonding[account];
        return (u.amount, u.releaseTime);
    }

    /// @notice The key slash votes are tallied under: one per (miner, epoch, evidence hash).
    function slashAccusation(address miner, uint256 epoch, bytes32 evidenceHash) public pure returns (bytes32) {
        return keccak256(abi.encode(miner, epoch, evidenceHash));
    }

    /// @notice Validator stake (at the epoch's end) that voted for this accusation so far, and
    /// whether it has slashed.
    function slashSupport(address miner, uint256 epoch, bytes32 evidenceHash)
        external
        view
        returns (uint256 support, bool slashed)
    {
        bytes32 accusation = slashAccusation(miner, epoch, evidenceHash);
        return (_slashSupport[accusation], _slashDone[accusation]);
    }

    function hasVotedSlash(address miner, uint256 epoch, bytes32 evidenceHash, address validator)
        external
        view
        returns (bool)
    {
        return _slashVoted[slashAccusation(miner, epoch, evidenceHash)][validator];
    }

    /// @notice Whether `nodeKey` belonged to a slashed miner (it can never register again).
    function isNodeKeyBanned(bytes32 nodeKey) external view returns (bool) {
        return _bannedNodeKeys[nodeKey];
    }

    /// @notice Stake burned by slashes so far (held by this contract forever).
    function totalSlashed() external view returns (uint256) {
        return _totalSlashed;
    }

    /// @notice Number of miner slots ever opened (the length of the weight vectors).
    function minerSlotCount() external view returns (uint256) {
        return _minerSlots.length;
    }

    function minerAt(uint256 slot) external view returns (address) {
        return _minerSlots[slot];
    }

    function minerSlots() external view returns (address[] memory) {
        return _minerSlots;
    }

    /// @notice Occupants of slots `from` (inclusive) to `to` (exclusive); zero for free slots.
    function minersInRange(uint256 from, uint256 to) external view returns (address[] memory out) {
        out = new address[](to - from);
        for (uint256 i = from; i < to; ++i) {
            out[i - from] = _minerSlots[i];
        }
    }

    function validators() external view returns (address[] memory) {
        return _validators;
    }

    function totalValidatorStake() external view returns (uint256) {
        return _totalValidatorStake;
    }

    /// @notice Total validator stake as it stood before timestamp `ts` (after every block
    /// timestamped earlier than `ts`).
    function totalValidatorStakeAt(uint256 ts) external view returns (uint256) {
        return _totalStakeHistory.upperLookupRecent(ts - 1);
    }

    /// @notice `account`'s validator stake before timestamp `ts`; 0 if it was no validator then.
    function validatorStakeAt(address account, uint256 ts) external view returns (uint256) {
        return _validatorStakeHistory[account].upperLookupRecent(ts - 1);
    }

    /// @notice Occupants of slots `from` (inclusive) to `to` (exclusive) before timestamp `ts`;
    /// zero for slots that were free or not yet opened then.
    function minersInRangeAt(uint256 from, uint256 to, uint256 ts)
        external
        view
        returns (address[] memory out)
    {
        out = new address[](to - from);
        for (uint256 i = from; i < to; ++i) {
            out[i - from] = address(uint160(_slotHistory[i].upperLookupRecent(ts - 1)));
        }
    }

    // ---------------------------------------------------------------- internals

    function _checkNewcomer(bytes32 nodeKey, uint256 minStake) private view {
        if (_participants[msg.sender].role != Role.None) revert AlreadyRegistered(msg.sender);
        if (nodeKey == bytes32(0)) revert ZeroNodeKey();
        address owner_ = _nodeKeyOwner[nodeKey];
        if (owner_ != address(0)) revert NodeKeyTaken(nodeKey, owner_);
        if (_bannedNodeKeys[nodeKey]) revert NodeKeyBanned(nodeKey);
        if (msg.value < minStake) revert InsufficientStake(msg.value, minStake);
    }

    function _admit(Role role, uint16 index, bytes32 nodeKey) private {
        _participants[msg.sender] = Participant({
            role: role,
            index: index,
            registeredEpoch: uint64(currentEpoch()),
            nodeKey: nodeKey,
            stake: msg.value
        });
        _nodeKeyOwner[nodeKey] = msg.sender;
    }

    function _takeMinerSlot() private returns (uint16 slot) {
        uint256 free = _freeSlots.length;
        if (free > 0) {
            slot = _freeSlots[free - 1];
            _freeSlots.pop();
            return slot;
        }
        if (_minerSlots.length < _params.maxMiners) {
            _minerSlots.push(address(0));
            return uint16(_minerSlots.length - 1);
        }
        slot = _lowestPerformingSlot();
        address evicted = _minerSlots[slot];
        _release(evicted);
        emit MinerReplaced(slot, evicted, msg.sender);
    }

    /// @dev Ties go to the lowest slot index so every node predicts the same victim.
    function _lowestPerformingSlot() private view returns (uint16) {
        uint16[] memory perf;
        uint256 perfEpoch;
        if (address(_incentives) != address(0)) {
            perf = _incentives.minerPerformances();
            perfEpoch = _incentives.performanceEpoch();
        }
        uint256 epoch = currentEpoch();
        uint256 immunity = _params.immunityEpochs;
        uint256 best = type(uint256).max;
        uint256 bestSlot;
        uint256 slots = _minerSlots.length;
        for (uint256 slot = 0; slot < slots; ++slot) {
            uint256 since = _participants[_minerSlots[slot]].registeredEpoch;
            if (since + immunity > epoch) continue;
            // A score measured before the occupant arrived belongs to its predecessor: the slot
            // counts as never scored (0) until an epoch of the current occupant is settled.
            uint256 score = slot < perf.length && perfEpoch >= since ? perf[slot] : 0;
            if (score < best) {
                best = score;
                bestSlot = slot;
            }
        }
        if (best == type(uint256).max) revert NoReplaceableMiner();
        return uint16(bestSlot);
    }

    function _setMinerSlot(uint16 slot, address account) private {
        _minerSlots[slot] = account;
        _push(_slotHistory[slot], uint256(uint160(account)));
    }

    function _recordValidatorStake(address account, uint256 stake) private {
        _push(_validatorStakeHistory[account], stake);
    }

    function _setTotalValidatorStake(uint256 total) private {
        _totalValidatorStake = total;
        _push(_totalStakeHistory, total);
    }

    /// @dev Records `value` at the block's timestamp, or at the history's latest key if that is
    /// later (only in a call or estimate run in an older block environment): the keys stay
    /// monotone, so the push can never revert with `CheckpointUnorderedInsertion`.
    function _push(Checkpoints.Trace256 storage history, uint256 value) private {
        uint256 key = block.timestamp;
        (bool exists, uint256 latest,) = history.latestCheckpoint();
        if (exists && latest > key) key = latest;
        history.push(key, value);
    }

    /// @dev A registered miner, or a former one whose bond is still unbonding.
    function _slashable(address account) private view returns (bool) {
        Role role = _participants[account].role;
        if (role == Role.Miner) return true;
        return role == Role.None && _bondKey[account] != bytes32(0) && _unbonding[account].amount > 0;
    }

    /// @dev Burns the bond (stake and unbonding), frees the slot, bans the node key.
    function _slash(address miner, uint256 epoch, bytes32 evidenceHash) private {
        Participant memory p = _participants[miner];
        uint256 burned = _unbonding[miner].amount;
        bytes32 key = _bondKey[miner];
        delete _unbonding[miner];
        if (p.role == Role.Miner) {
            burned += p.stake;
            _setMinerSlot(p.index, address(0));
            _freeSlots.push(p.index);
            delete _nodeKeyOwner[p.nodeKey];
            delete _participants[miner];
        }
        delete _bondKey[miner];
        _bannedNodeKeys[key] = true;
        _totalSlashed += burned;
        emit MinerSlashed(miner, epoch, evidenceHash, key, burned);
    }

    function _replaceSmallestValidator() private {
        uint256 count = _validators.length;
        uint256 lowest = type(uint256).max;
        address evicted;
        for (uint256 i = 0; i < count; ++i) {
            uint256 stake = _participants[_validators[i]].stake;
            if (stake < lowest) {
                lowest = stake;
                evicted = _validators[i];
            }
        }
        if (msg.value <= lowest) revert ValidatorSetFull(lowest);
        _removeValidator(evicted);
        _release(evicted);
        emit ValidatorReplaced(evicted, msg.sender);
    }

    function _removeValidator(address account) private {
        Participant storage p = _participants[account];
        uint256 last = _validators.length - 1;
        if (p.index != last) {
            address moved = _validators[last];
            _validators[p.index] = moved;
            _participants[moved].index = p.index;
        }
        _validators.pop();
        _recordValidatorStake(account, 0);
        _setTotalValidatorStake(_totalValidatorStake - p.stake);
    }

    /// @dev Moves the whole stake into unbonding and forgets the participant. A second
    /// unbonding before the first is withdrawn joins it and restarts the delay. A miner's bond
    /// unbonds from the end of the epoch it leaves in, not from its leaving: slash votes name
    /// a finished epoch, so a miner that fabricates and leaves early in an epoch still leaves
    /// validators the whole delay after that epoch's end to prove it.
    function _release(address account) private {
        Participant memory p = _participants[account];
        delete _nodeKeyOwner[p.nodeKey];
        delete _participants[account];
        Unbonding storage u = _unbonding[account];
        u.amount += p.stake;
        uint256 from = p.role == Role.Miner ? epochStart(currentEpoch() + 1) : block.timestamp;
        u.releaseTime = uint64(from) + _params.unbondingDelay;
        emit UnbondingStarted(account, p.role, p.stake, u.releaseTime);
    }
}
