/// The `io.concur.Supervisor` Varlink interface: its name, methods and definition.
public enum SupervisorInterface {
    /// The interface name.
    public static let name = "io.concur.Supervisor"

    /// The fully qualified name of `method`.
    public static func method(_ method: Method) -> String { "\(name).\(method.rawValue)" }

    /// The interface's methods.
    public enum Method: String, Sendable, CaseIterable {
        /// Queue explicit jobs.
        case submit = "Submit"
        /// Queue a seeded, generated workload.
        case generate = "Generate"
        /// The daemon at a glance.
        case status = "Status"
        /// Everything measured.
        case stats = "Stats"
        /// Change the number of workers.
        case resize = "Resize"
        /// Switch the concurrency model while the pool runs.
        case setModel = "SetModel"
        /// Jobs by id or state.
        case listJobs = "ListJobs"
        /// Stream job completions and pool events.
        case watchJobs = "WatchJobs"
        /// Stream statistics at an interval.
        case watchStats = "WatchStats"
        /// Stop handing out jobs.
        case pause = "Pause"
        /// Hand out jobs again.
        case resume = "Resume"
        /// Read the configuration file again and apply it.
        case reload = "Reload"
        /// Cancel jobs.
        case cancel = "Cancel"
        /// Stop the daemon, as SIGTERM does.
        case shutdown = "Shutdown"
        /// Stream an exec job's output.
        case logs = "Logs"
        /// The nodes of a shared queue, and its jobs.
        case clusterStatus = "ClusterStatus"
    }

    /// The interface definition, returned verbatim by `GetInterfaceDescription`.
    public static let definition = """
        # concur: a supervisor whose pool of workers runs jobs from one shared queue, and whose
        # concurrency model (threads, processes, tasks) can be switched while it runs.
        interface io.concur.Supervisor

        # How the pool runs its workers.
        type Model (threads, processes, tasks)

        # The kinds of job. crash aborts the process that runs it (only the processes model
        # survives it); exec runs a command and needs allow_exec in the daemon's configuration.
        type JobKind (cpu, prime, sleep, fail, crash, exec)

        # A job to run: its kind, that kind's parameter, and an optional time limit.
        type JobSpec (
          kind: JobKind,
          # cpu: units of CPU work, 0 to 1000 (1.0 is about 0.1 s of one core).
          size: ?float,
          # prime: the number to test for primality, 1 to 2^63-1.
          n: ?int,
          # sleep: milliseconds to wait, 0 to 3600000.
          ms: ?int,
          # exec: the command and its arguments (no shell), 1 to 256 of them.
          argv: ?[]string,
          # crash: run it even outside the processes model (it takes the daemon down).
          force: ?bool,
          # Seconds the job may run (0.001 to 86400); past it the job is stopped and fails.
          # Default: the daemon's job_timeout.
          timeout: ?float,
          # exec: the working directory, an absolute path the daemon can enter (checked at
          # submit). Default: the daemon's (concurctl sends the caller's).
          cwd: ?string,
          # exec: NAME=VALUE entries set on top of the daemon's environment (at most 256, 64 KiB).
          env: ?[]string,
          # exec: start from an empty environment instead of the daemon's.
          clearEnv: ?bool,
          # What a run cut short by a crash of the daemon or of the worker running it means:
          # atLeastOnce (the default) runs the job again; atMostOnce fails it with the reason.
          delivery: ?Delivery,
          # Runs after the first that fails on its own (a command that exits non-zero or passes
          # its time limit), 0 to 100; separate from the attempts after a worker dies.
          retries: ?int,
          # Seconds before the first retry (0 to 3600, default 1); each next one waits twice as
          # long (at most an hour), times a jitter between 0.75 and 1.25.
          retryDelay: ?float,
          # -10 to 10, default 0: a worker takes the highest priority queued job, first in
          # first out within a priority (strict: lower ones wait while higher ones keep coming).
          priority: ?int,
          # Unix seconds before which the job does not start (state scheduled); at submit no
          # more than a second in the past and at most 366 days ahead.
          startAt: ?float,
          # Ids of jobs that must all end done before this one starts (state waiting); if one
          # fails or is cancelled, so is this one. Each must exist at submit (at most 1000).
          after: ?[]int
        )

        # How a job is delivered across crashes.
        type Delivery (atLeastOnce, atMostOnce)

        # Where a job is in its life: scheduled waits for its startAt, waiting for the jobs it
        # runs after; both are then queued.
        type JobState (queued, scheduled, waiting, running, done, failed, cancelled)

        # What a finished job produced.
        type JobResult (
          summary: string,
          prime: ?bool,
          factor: ?int,
          checksum: ?int,
          exitCode: ?int,
          signal: ?int,
          output: ?string,
          seconds: ?float
        )

        # A run that failed and was retried. Times are Unix seconds.
        type Attempt (
          attempt: int,
          startedAt: ?float,
          finishedAt: float,
          exitCode: ?int,
          signal: ?int,
          error: string
        )

        # A job and its history. Times are Unix seconds.
        type Job (
          id: int,
          spec: JobSpec,
          label: string,
          state: JobState,
          attempts: int,
          submittedAt: float,
          startedAt: ?float,
          finishedAt: ?float,
          worker: ?int,
          model: ?Model,
          result: ?JobResult,
          error: ?string,
          # The runs that failed and were retried, oldest first.
          history: ?[]Attempt,
          # While it waits out a retry's delay: when the next run may start.
          retryAt: ?float,
          # While waiting: the jobs it still waits for.
          waitingFor: ?[]int,
          # In a shared queue (--store): the node that holds or ran it.
          node: ?string
        )

        # The kind of jobs Generate creates; mixed picks one of the others per job.
        type GeneratedKind (cpu, prime, sleep, mixed)

        # serving: accepting jobs; degraded: the job journal cannot record (warnings says why),
        # so new jobs are refused and workers start none until it can; draining: intake closed,
        # running jobs finishing; stopping: running jobs being cancelled.
        type Phase (serving, degraded, draining, stopping)

        type WorkerCounts (
          target: int,
          live: int,
          busy: int,
          idle: int,
          retiring: int
        )

        type JobTotals (
          submitted: int,
          done: int,
          failed: int,
          cancelled: int,
          retried: int
        )

        type DaemonStatus (
          version: string,
          pid: int,
          uptimeSeconds: float,
          model: Model,
          phase: Phase,
          workers: WorkerCounts,
          queued: int,
          # Jobs waiting for their start time, and for the jobs they run after.
          scheduled: ?int,
          waiting: ?int,
          running: int,
          maxQueue: int,
          totals: JobTotals,
          # Problems an operator should know about, such as a model that keeps dying at start.
          warnings: []string,
          # Model switches since start.
          switches: int,
          # Workers of another model still finishing their job after a switch.
          handingOver: int,
          # Paused: workers take no new jobs (running ones finish); the queue keeps accepting.
          paused: bool,
          # The pool this describes, and whether a reload removed it (it then takes no work and
          # runs no workers; its unfinished jobs are kept until it is added back).
          pool: ?string,
          removed: ?bool,
          # Run-time percentiles over the last 10 seconds, in the pools of Stats only.
          recentRun: ?Percentiles,
          # On a node of a shared queue (--store): the node's name. Its pools' jobs are those it
          # claimed from the queue (totals.submitted counts them), wherever they were submitted.
          node: ?string,
          # When the pool has task workers: the OS threads they take turns on.
          taskThreads: ?int
        )

        # Percentiles of a latency, in seconds.
        type Percentiles (
          count: int,
          p50: float,
          p90: float,
          p99: float,
          max: float,
          # The samples added up, in seconds.
          sum: ?float
        )

        type Latency (
          queueWait: Percentiles,
          run: Percentiles,
          endToEnd: Percentiles
        )

        # Jobs finished per second over the last 1, 10 and 60 seconds, and in each second of the
        # last minute as sampled (history, oldest first).
        type Throughput (
          last1s: float,
          last10s: float,
          last60s: float,
          history: []float
        )

        type WorkerState (starting, idle, busy, retiring)

        type Worker (
          id: int,
          model: Model,
          state: WorkerState,
          thread: ?int,
          pid: ?int,
          job: ?int,
          jobSeconds: ?float,
          jobsDone: int,
          # The share of its life spent running jobs, 0 to 1.
          busyFraction: float,
          # The share of the last 10 s (of its life, if shorter) spent running jobs.
          recentBusyFraction: ?float,
          # Jobs handed to it and not finished: the running one and those prefetched behind it.
          held: int,
          # A child process's resident memory, in bytes.
          rssBytes: ?int,
          # Seconds from its creation until it served (a thread started, a child said hello).
          startupSeconds: ?float,
          # Its place among the pool's workers (1 up to the target), which a replacement takes.
          slot: ?int
        )

        # The last model switch: when it was asked for (Unix seconds), and how many seconds after
        # that a worker of the new model served, started a job, and the last worker of another
        # model left (null: not yet).
        type ModelSwitch (
          from: Model,
          to: Model,
          preempt: bool,
          requestedAt: float,
          servingAfter: ?float,
          firstJobAfter: ?float,
          oldRetiredAfter: ?float
        )

        type ProcessUsage (
          cpuUserSeconds: float,
          cpuSystemSeconds: float,
          rssBytes: int,
          threads: int,
          # CPU of the daemon and its child workers over the last second, in percent of one core.
          cpuPercent: float
        )

        type EventKind (switchRequested, switchServing, resized, workerDied, paused, resumed, draining, journal)

        # Something that happened to the pool. time is in Unix seconds; worker and model name
        # what it concerns, when something does.
        type Event (
          time: float,
          kind: EventKind,
          message: string,
          worker: ?int,
          model: ?Model
        )

        # Jobs that ended while a client of a stream that ends (Submit or Generate with 'more',
        # WatchJobs of ids or unfinished) was too far behind to be sent them: counted by how
        # they ended instead, in a reply of their own, so that the stream still accounts for
        # every job. The stream of every job cuts such a client off instead.
        type SkippedJobs (done: int, failed: int, cancelled: int)

        # Queues jobs (at most 10000 per call); all or none are accepted. Called with 'more',
        # the first reply carries the ids, then each job comes in a reply of its own (job set)
        # as it reaches a final state, the last one ending the call: a watch that starts with
        # the submit, so not even a job that finishes at once is missed.
        #
        # Pools: a daemon runs one or more named pools, each with its own model, workers, queue
        # limit and pause state, and one id space. A call that changes something addresses the
        # pool given by pool, or default without one; an unknown (or removed) name fails with
        # UnknownPool. Calls that read show every pool (Status and Stats list them in pools),
        # and pool narrows them. A job's id names it in whichever pool holds it.
        method Submit(jobs: []JobSpec, pool: ?string) -> (ids: []int, job: ?Job, skipped: ?SkippedJobs)

        # Queues count seeded jobs with consecutive ids first...last. The same seed gives the
        # same jobs; without one the daemon picks a seed and returns it. scale multiplies cpu
        # sizes and sleep times (0 makes no-op jobs); priority, startAt and after are as in
        # JobSpec, the same for every job. 'more' streams the jobs as for Submit.
        method Generate(
          count: int, kind: ?GeneratedKind, seed: ?int, scale: ?float, timeout: ?float, priority: ?int, startAt: ?float,
          after: ?[]int, pool: ?string
        ) -> (first: int, last: int, count: int, seed: int, job: ?Job, skipped: ?SkippedJobs)

        # The daemon at a glance, as the pool given (default without one) sees it, and every pool
        # (the default first, then by name; removed ones that still hold jobs too).
        method Status(pool: ?string) -> (status: DaemonStatus, pools: []DaemonStatus)

        # Everything measured: throughput, latency percentiles since start (latency) and over the
        # last 10 seconds (recentLatency), one row per worker, the most recent events: of the pool
        # given (default without one); process is the daemon's, pools lists every pool's status.
        method Stats(pool: ?string) -> (status: DaemonStatus, throughput: Throughput, latency: Latency, recentLatency: Latency, workers: []Worker, process: ProcessUsage, resizes: int, workerDeaths: int, workerRestarts: int, lastSwitch: ?ModelSwitch, events: []Event, pools: []DaemonStatus)

        # Streams Stats every interval seconds (0.05 to 60, default 1), the first reply at once.
        # Needs 'more'. A client that reads slowly gets fewer replies (the latest wins), never a
        # slower daemon; one that stops reading for the daemon's watcher_timeout is disconnected.
        method WatchStats(interval: ?float, pool: ?string) -> (status: DaemonStatus, throughput: Throughput, latency: Latency, recentLatency: Latency, workers: []Worker, process: ProcessUsage, resizes: int, workerDeaths: int, workerRestarts: int, lastSwitch: ?ModelSwitch, events: []Event, pools: []DaemonStatus)

        # Workers stop taking jobs; running jobs (and the few a worker already holds) finish.
        # Jobs are still accepted and wait in the queue. changed is false if it already was.
        method Pause(pool: ?string) -> (changed: bool)

        # Workers take jobs again. changed is false if they were not paused.
        method Resume(pool: ?string) -> (changed: bool)

        # Reads the configuration file again (command-line options still override it) and
        # applies what changed through the same paths as Resize and SetModel (graceful); returns
        # once applied, with each change (applied) and the changes that wait for a restart
        # (socket, task_threads, worker_nice, start_method, watcher_timeout). A configuration
        # that does not pass its checks changes nothing: InvalidConfiguration says why.
        method Reload() -> (applied: []string, restartNeeded: []string)

        # Sets the number of workers. Growing starts workers at once; shrinking retires idle
        # workers first and busy ones after their current job.
        method Resize(workers: int, pool: ?string) -> (workers: int, previous: int)

        # Switches the concurrency model while the pool runs; no job is lost or run twice. The
        # queue stays; workers of the old model take no more jobs and retire after their running
        # job (idle ones at once), and a worker of the new model starts in each place one leaves,
        # so there are never more workers than the target. With preempt, running jobs are
        # interrupted instead and go back to the head of the queue, to run again from the start.
        # A switch asked for during another one replaces it. Returns once a worker of the new
        # model serves (servingAfter: seconds since the call; changed is false if the pool
        # already ran that model).
        method SetModel(model: Model, preempt: ?bool, pool: ?string) -> (model: Model, previous: Model, changed: bool, servingAfter: float)

        # Jobs by id; or up to limit (default 100) jobs in a state: queued ones in the order they
        # will run, scheduled ones the soonest first, waiting ones by id, running ones, or the
        # most recently finished; without a state the newest.
        # No reply is over 1 MiB: with 'more' the jobs come in parts, a reply each, the next
        # once the client has read the last; without it a list that does not fit one reply is
        # refused with InvalidValue. With pool, only that pool's jobs; without, every pool's
        # (queued, scheduled, waiting and running ones pool by pool, the others newest by id).
        # On a node of a shared queue (--store), ids may be anywhere in the queue: those no pool
        # here holds are read from it (queued there until a node starts them; claimed ones are
        # queued with their node); without ids, the list is the queue's, every node's jobs.
        method ListJobs(ids: ?[]int, state: ?JobState, limit: ?int, pool: ?string) -> (jobs: []Job)

        # Streams each job of ids as it reaches a final state; jobs already finished are sent at
        # once, and the stream ends after the last one. Without ids it streams every job that
        # finishes, and the pool's events (each reply has job or event), until the client hangs
        # up; events: false leaves the events out, events: true adds them to a watch of ids.
        # With unfinished (and no ids) it streams every job queued or running at the call as it
        # ends, the last ending the stream; when there is none, one empty reply ends the call.
        # Needs 'more'. Ids may be in several pools (the stream ends after the last of them);
        # without ids it follows the pool given, or every pool. A client that falls too far
        # behind a stream that ends gets SkippedJobs counts instead of those jobs; behind the
        # stream of every job it is disconnected. On a node of a shared queue (--store), ids and
        # unfinished follow the queue's jobs wherever they run, each sent within about 0.2 s of
        # its end (unfinished: the whole queue's, or the pool's, at most 100000), without events;
        # Submit with 'more' follows its jobs the same way.
        method WatchJobs(ids: ?[]int, events: ?bool, unfinished: ?bool, pool: ?string) -> (job: ?Job, event: ?Event, skipped: ?SkippedJobs)

        # Cancels the jobs of ids, all or none (an unknown id fails with NoSuchJob, a job that
        # already ended with JobFinished), or with queued every job waiting to run (running ones
        # go on). A job not started ends cancelled at once (cancelled). A running one is
        # interrupted (stopping): an exec command's process group gets SIGTERM, then SIGKILL 2 s
        # later; other jobs stop at their next check, in every model. It ends cancelled once it
        # stops, or as it ended if it ended first: WatchJobs follows it. The reason recorded names
        # the caller's uid. A cancelled job is never run again, even if the daemon stops first.
        # Ids may be in any pools; queued cancels the queued jobs of the pool given (default
        # without one, a removed pool's kept jobs too). On a node of a shared queue (--store),
        # ids may be anywhere in the queue: a job another node holds is stopping until that
        # node cancels it (within about a second), and queued includes the pool's jobs waiting
        # in the queue.
        method Cancel(ids: ?[]int, queued: ?bool, pool: ?string) -> (cancelled: []int, stopping: []int)

        # drain: intake closes, running jobs finish (within the daemon's drain_timeout), queued
        # ones stay in the journal for the next start; interrupt: running jobs are cancelled too.
        type ShutdownMode (drain, interrupt)

        # Shuts the daemon down as SIGTERM does (drain, the default) or a second SIGTERM does
        # (interrupt); a shutdown only goes further, never back. Replies once it has begun
        # (changed is false if the daemon was already there), then the daemon exits when the
        # drain ends.
        method Shutdown(mode: ?ShutdownMode) -> (mode: ShutdownMode, changed: bool)

        # An exec job's command's streams.
        type LogStream (stdout, stderr)

        # Streams an exec job's output as its command wrote it (bytes in Base64: text that is not
        # UTF-8, and NUL, come back intact): the stream given, or both, a chunk per reply, the
        # next once the client has read the last. cut: bytes dropped just before this chunk to
        # keep the stream under max_output (its head and tail are kept). With follow, it goes
        # on while the job runs; the last reply (end) comes once the job has ended and every byte
        # was sent. A job that ran no command has no output. Needs 'more'.
        method Logs(id: int, stream: ?LogStream, follow: ?bool) -> (stream: ?LogStream, data: ?string, cut: ?int, end: ?bool)

        # Where a node of a shared queue (--store) is: running (it heartbeats), silent (its lease
        # lapsed and no node has noticed yet), stopped (after a drain) or lost (another node
        # found it silent and put its jobs back).
        type NodeState (running, silent, stopped, lost)

        # A pool of a node as of the node's last heartbeat: workers asked for, and busy.
        type NodePool (pool: string, model: Model, workers: int, busy: int, paused: bool)

        # A node of a shared queue. startedAt is Unix seconds; heartbeatAge is seconds since
        # its last heartbeat by the database's clock; pools and the counts (since it started)
        # are as of that heartbeat, the answering node's own as of the call. problem says what
        # of its record could not be read.
        type ClusterNode (
          name: string, host: string, pid: int, version: string, state: NodeState, startedAt: float,
          heartbeatAge: float, leaseSeconds: float, pools: []NodePool, done: int, failed: int, cancelled: int,
          problem: ?string
        )

        # A pool's jobs in the shared queue by state: claimed ones are held by a node and not
        # started yet.
        type ClusterQueue (
          pool: string, queued: int, scheduled: int, claimed: int, running: int, done: int, failed: int,
          cancelled: int
        )

        # Every node the shared queue has seen (by name) and its jobs (a row per pool, by name),
        # read from the queue by the node answeredBy. A daemon with a queue of its own (no
        # --store) answers NotShared.
        method ClusterStatus() -> (answeredBy: string, nodes: []ClusterNode, queue: []ClusterQueue)

        # No pool of this name takes work: never configured, or (removed) removed by a reload
        # and holding kept jobs, which can still be listed and cancelled; pools lists those
        # that take work.
        error UnknownPool (pool: string, pools: []string, removed: ?bool)

        # The job had already ended, in state, so there is nothing to cancel.
        error JobFinished (id: int, state: JobState)

        # The queue holds too many jobs to take these.
        error QueueFull (limit: int, queued: int)

        # The daemon is shutting down and takes no new jobs.
        error ShuttingDown ()

        # The worker count must be between min and max.
        error InvalidWorkers (min: int, max: int)

        # No job has this id (never submitted, or finished and no longer kept).
        error NoSuchJob (id: int)

        # exec jobs are not allowed by the daemon's configuration (allow_exec).
        error ExecDisabled ()

        # A crash job would take the daemon down under this model; force it to run anyway.
        error CrashRefused (model: Model)

        # The model cannot run in this daemon, or none of its workers could be started.
        error ModelUnavailable (model: Model, reason: string)

        # Another switch, to model, was asked for before this one's model served.
        error SwitchSuperseded (model: Model)

        # The configuration file could not be read again or applied; the running one stays.
        error InvalidConfiguration (reason: string)

        # A parameter's value is out of range; reason says what is allowed.
        error InvalidValue (parameter: string, reason: string)

        # The last message was not a Varlink call: not JSON, nested deeper than the parser's
        # limit, or over the size limit. The connection is closed after this reply.
        error InvalidMessage (reason: string)

        # The job journal cannot record jobs (a full or failing disk); reason says what happened
        # to the ones in this call. Status and the running jobs still work.
        error JournalUnavailable (reason: string)

        # The shared job store (PostgreSQL) cannot take jobs now: its server is away or refuses;
        # reason says why. first and last, when present, bound ids that may or may not have
        # been queued (the commit was sent, its answer lost): ListJobs shows which were.
        error StoreUnavailable (reason: string, first: ?int, last: ?int)

        # The call needs a node of a shared queue, and this daemon keeps a queue of its own
        # (it was started without --store).
        error NotShared ()

        """
}
