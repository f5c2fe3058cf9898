"""The port corpus: public PyTorch NLP scripts, rewritten to run in seconds on either library.

Each port imports PyTorch's names through ``_switch`` (``import torch`` or ``import tracer as
torch``, and so on): the import lines are the only difference between a torch run and a
graphcap run. ``harness`` runs a port on both and compares the first loss and one optimizer
step; ``census`` counts the ports that run on graphcap.
"""
