// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice What the registry needs from the incentives contract to pick which miner to replace.
interface IMinerPerformance {
    /// @notice Per miner slot, its consensus weight (the stake-weighted kappa-quantile of the
    /// weights it received) in the most recent directly settled epoch (0..65535; slots never
    /// settled read as 0).
    function minerPerformances() external view returns (uint16[] memory);

    /// @notice The epoch those performances were measured in (0 before any settlement).
    function performanceEpoch() external view returns (uint256);
}
