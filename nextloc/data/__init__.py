"""A dataset folder read and checked, the standard split into samples, batching, long-term
counts, synthetic data. Built on nextloc.core only."""
