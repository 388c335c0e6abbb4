"""A decentralized-SGD testbed that checks DICE influence estimates against ground truth.

It reproduces the DICE paper's setting at CPU scale (16 nodes, ring and exponential
topologies, a small MLP, adapt-then-communicate SGD) in float64, computes ground-truth
influence by counterfactual re-runs (DICE Def. 2/3) and compares the estimators of
``validator.influence`` against it, for exact-gradient SGD and for seed-based (SPSA) updates.
"""
