"""Evaluation through the public filters: baselines, metrics, tables and crops.

It depends on the filters (what users get) and on the training package's degradations, so that a
model is scored on exactly the inputs it was trained for.
"""
