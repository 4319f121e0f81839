"""XLA compile options for tests whose cost is compiling many small programs (the scan conformance suite, the
smoke matrix).

LLVM's optimisation level 0 compiles the same XLA program (the same HLO and buffers; only LLVM's code generation
is less optimised, so results may differ in the last bits, e.g. where a multiply-add is fused), 1.4-1.9x faster on this 2-core CPU: the first compile of a scan's value
and VJP at L=257 (measured side by side in one process, load ~13): rotation associative 17.7 -> 9.1 s, diagonal
associative 9.0 -> 6.6 s, diagonal chunked 2.3 -> 1.6 s, dense sequential 0.9 -> 0.6 s; a 1-layer LRU's train step
6.6 -> 3.7 s of CPU. Run time at these sizes stays in milliseconds. Not for tests that train for many steps, whose
run time it would lengthen.
"""
import functools

import jax

CHEAP_COMPILE = {"xla_backend_optimization_level": 0}

cheap_jit = functools.partial(jax.jit, compiler_options=CHEAP_COMPILE)
