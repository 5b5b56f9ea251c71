"""Count what JAX itself reports: traces to jaxprs and XLA compilations (jax.monitoring events)."""
import contextlib

from jax import monitoring
from jax._src import dispatch

EVENTS = {"trace": dispatch.JAXPR_TRACE_EVENT, "compile": dispatch.BACKEND_COMPILE_EVENT}


@contextlib.contextmanager
def counting():
    """with counting() as counts: ... -> counts["trace"], counts["compile"] during the block."""
    counts = {k: 0 for k in EVENTS}
    names = {v: k for k, v in EVENTS.items()}

    def listen(event, duration, **kwargs):
        if event in names:
            counts[names[event]] += 1

    monitoring.register_event_duration_secs_listener(listen)
    try:
        yield counts
    finally:
        monitoring.unregister_event_duration_listener(listen)
