"""Reference maths of on-chain settlement, integer-exact: weight vectors, the stake-weighted
consensus, Merkle reward trees and the contracts' parameter types. Pure: no chain access."""
