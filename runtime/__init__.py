"""What every live node runs, whatever its role: the certified model state, the follower that
applies final rounds, catch-up from peers, the per-peer gate and the service shell."""
