// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title SeedswarmToken
/// @notice The network's reward token. It has no initial supply: every unit is minted by the
/// incentives contract when a contributor claims a settled reward.
/// @dev The deployer binds the minter exactly once; binding renounces ownership, so afterwards no
/// account can change who mints.
contract SeedswarmToken is ERC20, Ownable {
    address private _minter;

    /// @notice Emitted once, when the minter is bound.
    event MinterBound(address indexed minter);

    error MinterAlreadyBound(address minter);
    error ZeroMinter();
    error UnauthorizedMinter(address caller);

    constructor(address initialOwner) ERC20("Seedswarm", "SEED") Ownable(initialOwner) {}

    /// @notice Binds the only account allowed to mint and gives up ownership.
    function bindMinter(address minter_) external onlyOwner {
        if (minter_ == address(0)) revert ZeroMinter();
        if (_minter != address(0)) revert MinterAlreadyBound(_minter);
        _minter = minter_;
        emit MinterBound(minter_);
        _transferOwnership(address(0));
    }

    /// @notice Mints `amount` to `to`; callable only by the bound minter.
    function mint(address to, uint256 amount) external {
        if (msg.sender != _minter || msg.sender == address(0)) revert UnauthorizedMinter(msg.sender);
        _mint(to, amount);
    }

    /// @notice The incentives contract that mints rewards (zero until bound).
    function minter() external view returns (address) {
        return _minter;
    }
}
