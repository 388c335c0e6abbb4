"""The model and the work: models, tasks, trainable selection, checkpoints, genesis, the
miner's work function, the replica that applies certified rounds, and the recomputation
validators use to check a contribution. Shared by node/ (miners) and validator/."""
