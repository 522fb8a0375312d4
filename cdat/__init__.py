"""CDAT domain core: claims, findings, estimating, triage and fraud rules.

Plain Python: no web, queue, vision or ML framework is imported here.
"""

__version__ = "0.1.0"
