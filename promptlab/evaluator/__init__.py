"""Evaluators: the metrics an experiment computes for each record.

``Evaluator`` (``promptlab.evaluator.evaluator``) is the base of custom metrics;
``EvaluatorFactory.get_evaluator`` (``promptlab.evaluator.evaluator_factory``) gives the
evaluator of a metric name, or prepares a custom one, with the experiment's models.
"""
