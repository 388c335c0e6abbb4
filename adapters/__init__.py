"""I/O adapters: how a node talks to the world.

`transport` (in-memory, libp2p, MQTT), `chain` (the contracts over web3.py, dev-chain launcher),
`storage` (the certified log on disk, encrypted keystores). Everything here sits on protocol/'s
rules and knows nothing of models, miners or validators.
"""
