"""The production composition of a live node: settings, then a miner or validator wired to its
transport, chain, membership and log. Used by `seedswarm miner`, `seedswarm validator` and the
devnet; it never imports the simulator or the devnet and never builds an attacker."""
