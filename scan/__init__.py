"""Linear recurrences h_t = a_t (.) h_{t-1} + b_t in pure JAX: scan operators and the methods that run them.

    h = scan.linear_recurrence(a, b, h0=None, reverse=False, axis=1, method="auto", operator="diagonal",
                               chunk_size=None)

Operators (scan.OPERATORS, one module each: scan/diagonal.py, scan/dense.py, scan/rotation.py) say what the
recurrence is; methods (scan/methods.py: sequential, associative, chunked; 'auto' = choose_method) say how it is
computed.
See scan/README.md for the contract, the measured benchmark and how to add an operator.
"""
from scan.methods import default_chunk_size
from scan.operator import Problem, ScanOperator, accumulation_dtype
from scan.recurrence import METHODS, OPERATORS, choose_method, get_operator, linear_recurrence

__all__ = ["linear_recurrence", "OPERATORS", "METHODS", "choose_method", "get_operator", "ScanOperator",
           "Problem", "accumulation_dtype", "default_chunk_size"]
