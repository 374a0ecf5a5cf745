"""What happens to jobs: services, executor and steps, placement and dispatch, results, the
watcher and the worker fleet. Knows nothing of HTTP."""
