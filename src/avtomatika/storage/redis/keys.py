"""Key names of the Redis backend, and the messages on its wake-up channel.

The Lua scripts build the same names (``lua/common.lua``); each kind of key has its own
namespace, so no id can make two kinds of key collide::

    {prefix}:job:{<job_id>}            hash   v (version), d (blob), t (terminal: the key expires)
    {prefix}:client-jobs:<client>      zset   job ids by creation sequence (newest last)
    {prefix}:client-expiring:<client>  zset   terminal job ids by expiry (epoch ms), for trimming
    {prefix}:runs                      zset   job ids by ready time (a leased entry: lease expiry)
    {prefix}:run-leases                hash   job id -> token of the lease holding its entry
    {prefix}:task:<task_id>            hash   d (blob), s, w, p, m, qd, et, rd, pu, j (plain fields)
    {prefix}:worker-queue:<worker>     zset   queued tasks: score -priority, member seq+task id
    {prefix}:worker-running:<worker>   set    running task ids
    {prefix}:worker:<worker>           hash   d (blob), rep, lp, f:<heartbeat field> (MessagePack);
                                              expires worker_retention after the liveness deadline
    {prefix}:worker-skills:<worker>    set    skill names the worker is indexed under; expires with it
    {prefix}:skill:<name>              zset   worker ids by liveness deadline (gone ones trimmed on lookup)
    {prefix}:workers                   set    every registered worker id (expired ones dropped on listing)
    {prefix}:deadlines                 zset   "task:<id>" / "worker:<id>" / other keys by due time
    {prefix}:seq                       string one counter for queue and index sequence numbers
    {prefix}:lock:<name>               string the owner token, with a PX expiry
    {prefix}:watched                   string when an instance last watched (epoch seconds)
    {prefix}:idempotency:<key>         hash   j (job id), f (fingerprint) of a creation; PX expiry
    {prefix}:wake                      pub/sub channel of wake-up messages
"""

RUNS_MESSAGE = b"r"
"""Published when a run-queue entry became ready or became the earliest one."""
TASKS_MESSAGE = b"t"
"""Prefix of the message published, followed by the worker id, when tasks reach a worker's queue."""


class Keys:
    """The names the Python side reads directly; everything else is touched only by scripts."""

    __slots__ = ("channel", "deadlines", "prefix")

    def __init__(self, prefix: str) -> None:
        if not prefix:
            raise ValueError("The Redis key prefix must not be empty")
        self.prefix = prefix
        self.channel = f"{prefix}:wake"
        self.deadlines = f"{prefix}:deadlines"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{{{job_id}}}"

    def task(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    def worker_queue(self, worker_id: str) -> str:
        return f"{self.prefix}:worker-queue:{worker_id}"

    def worker_running(self, worker_id: str) -> str:
        return f"{self.prefix}:worker-running:{worker_id}"
