"""The chain adapter: typed access to the seedswarm contracts over web3.py.

The embedded default is the in-process EVM (eth-tester + py-evm); any JSON-RPC URL works the
same (anvil for realistic runs). The package itself imports nothing: callers import the module
they need, so code that only needs the errors, the journal or the settlement port
(`settlement_port.SettlementPort`, implemented over web3 by `chain_settlement.ChainSettlement`
and in process by `memory_settlement.MemorySettlement`) does not load web3. The settlement maths
and the contracts' parameter types are protocol's (protocol.settlement); the membership tables
are protocol.membership's.
"""
