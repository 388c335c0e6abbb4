"""The in-process swarm simulator: many miners, one certifier, bit-identical replicas."""
