using System.ComponentModel.DataAnnotations;
using TrainingService.Compute.Devices;

namespace TrainingService.Server.Configuration;

/// <summary>What one process does: serve the HTTP API, run training jobs, or both (the laptop default).</summary>
public enum ServiceRole
{
    /// <summary>HTTP API and a training worker in one process.</summary>
    All,
    /// <summary>HTTP API only; jobs are run by worker processes sharing the database.</summary>
    Api,
    /// <summary>Training worker only (plus health endpoints).</summary>
    Worker,
}

/// <summary>
/// Section <c>Telemetry</c>: the Prometheus scrape endpoint and the job gauges. OTLP export is configured by the
/// standard <c>OTEL_*</c> variables (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c> turns it on).
/// </summary>
public sealed class TelemetryOptions
{
    /// <summary>Serve Prometheus's <c>/metrics</c> at all.</summary>
    public bool Metrics { get; set; } = true;

    /// <summary>
    /// 0: API processes serve <c>/metrics</c> on their own port, to owner keys only. A port: every process (workers too)
    /// also listens on it and serves <c>/metrics</c> there without a key, and only there (for a scraper inside the network).
    /// </summary>
    [Range(0, 65535)]
    public int MetricsPort { get; set; }

    /// <summary>How often an API process counts jobs by state and queued jobs by device for the gauges.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan GaugeInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>Section <c>Service</c>.</summary>
public sealed class ServiceOptions
{
    /// <summary><c>all</c> (default), <c>api</c> or <c>worker</c>; also <c>--role</c> on the command line.</summary>
    public ServiceRole Role { get; set; } = ServiceRole.All;

    /// <summary>True when this process serves the API.</summary>
    public bool ServesApi => Role != ServiceRole.Worker;

    /// <summary>True when this process runs training jobs.</summary>
    public bool RunsJobs => Role != ServiceRole.Api;
}

/// <summary>Section <c>Worker</c>: the Hangfire server that runs training jobs.</summary>
public sealed class WorkerOptions
{
    /// <summary>
    /// The pool this worker serves (with the shared queue of "any" jobs): Auto takes it from the compute device (a GPU serves
    /// cuda jobs, the CPU accelerator cpu jobs). Cuda on a CPU device is for tests of routing without a GPU.
    /// </summary>
    public WorkerPool Pool { get; set; } = WorkerPool.Auto;

    /// <summary>Training jobs run at once in this process. Jobs share one accelerator, so 1 is usually right.</summary>
    [Range(1, 64)]
    public int WorkerCount { get; set; } = 1;

    /// <summary>How often an idle worker re-checks the queue when no notification arrives (a safety net).</summary>
    [Range(typeof(TimeSpan), "00:00:00.1", "00:10:00")]
    public TimeSpan QueuePollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A running job whose worker stops sending keep-alives is handed to another worker after this.</summary>
    [Range(typeof(TimeSpan), "00:00:05", "12:00:00")]
    public TimeSpan InvisibilityTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Time a stopping worker gives its running job to reach a batch boundary and checkpoint.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the worker re-reads a running job's status in case a cancel notification was missed.</summary>
    [Range(typeof(TimeSpan), "00:00:00.1", "00:10:00")]
    public TimeSpan CancellationPollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Queued jobs older than this with no Hangfire job (a crash between commit and enqueue) are enqueued again.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan RecoveryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often a worker looks for running jobs whose lease nobody holds (their worker died) and hands them to a live
    /// one; a dead worker's job resumes within about this plus a second.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.5", "00:10:00")]
    public TimeSpan RecoveryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often a worker process writes its heartbeat; readiness counts a worker live for three of these.</summary>
    [Range(typeof(TimeSpan), "00:00:00.5", "00:01:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Longest time a worker retries a database call that failed with a transient error (connection lost, server
    /// restarting) before it leaves the job running for recovery to resume.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan TransientRetryLimit { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Section <c>Compute</c>: the accelerator.</summary>
public sealed class ComputeOptions
{
    /// <summary><c>auto</c> (CUDA when present, else CPU), <c>cpu</c> or <c>cuda</c>.</summary>
    public DeviceKind Device { get; set; } = DeviceKind.Auto;

    /// <summary>Two-thread groups of the CPU accelerator (default: half the processor count, one thread per core).</summary>
    [Range(1, 256)]
    public int? CpuGroups { get; set; }
}

/// <summary>Section <c>Datasets</c>: upload limits and schema inference.</summary>
public sealed class DatasetOptions
{
    /// <summary>Largest accepted CSV (bytes of the file itself); larger uploads get 413.</summary>
    [Range(1L, long.MaxValue)]
    public long MaxUploadBytes { get; set; } = 1L << 30;

    /// <summary>Most columns a dataset may have.</summary>
    [Range(1, 100_000)]
    public int MaxColumns { get; set; } = 2_000;

    /// <summary>A text column with at most this many distinct values is categorical; more makes it text.</summary>
    [Range(2, 100_000)]
    public int MaxCategories { get; set; } = 100;

    /// <summary>Rows per stored chunk (a worker reads chunks column by column).</summary>
    [Range(16, 10_000_000)]
    public int ChunkRows { get; set; } = 65_536;

    /// <summary>Rows kept for previews.</summary>
    [Range(1, 1_000)]
    public int PreviewRows { get; set; } = 100;

    /// <summary>Categories listed per column in the statistics.</summary>
    [Range(1, 1_000)]
    public int TopCategories { get; set; } = 20;

    /// <summary>Longest dataset name and column name, in characters (UTF-16 code units).</summary>
    [Range(1, 100_000)]
    public int MaxNameLength { get; set; } = 256;

    /// <summary>Uploads in progress at once in this process; past it an upload gets 429 before its body is read.</summary>
    [Range(1, 10_000)]
    public int MaxConcurrentUploads { get; set; } = 8;

    /// <summary>Uploads in progress at once from one client (by remote address); past it 429.</summary>
    [Range(1, 10_000)]
    public int MaxConcurrentUploadsPerClient { get; set; } = 2;

    /// <summary>The <c>Retry-After</c> sent with a 429 for too many uploads.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan UploadRetryAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Slowest accepted upload body, in bytes per second, after <see cref="MinUploadRateGrace"/>; slower gets 408.</summary>
    [Range(1.0, 1e12)]
    public double MinUploadBytesPerSecond { get; set; } = 10_240;

    /// <summary>Time an upload body may run below <see cref="MinUploadBytesPerSecond"/> before it is refused (Kestrel needs over 1 s).</summary>
    [Range(typeof(TimeSpan), "00:00:02", "01:00:00")]
    public TimeSpan MinUploadRateGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest time an upload body may take, whatever its rate; longer gets 408 and nothing is stored.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan UploadTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// While an upload whose declared size fits arrives briskly, its chunks are also streamed into PostgreSQL on one
    /// connection, so storing overlaps parsing; once a read of its body waits this long (or the client sends under
    /// <see cref="MinUploadBytesPerSecond"/>), that COPY is rolled back, the connection released, and the upload stored
    /// from its spool after the body is complete. Zero: never stream (always store after the body).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan StreamStallTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Where uploads spool their encoded chunks until the body is complete (empty: <c>trainingservice-spool</c> under the
    /// system temp directory). Each process removes its own stale files at start.
    /// </summary>
    public string SpoolDirectory { get; set; } = "";

    /// <summary>Disk all spooling uploads of this process may use together; an upload that would pass it gets 503.</summary>
    [Range(1L << 20, long.MaxValue)]
    public long MaxSpoolBytes { get; set; } = 8L << 30;
}

/// <summary>Section <c>Losses</c>: the loss evaluation endpoint.</summary>
public sealed class LossApiOptions
{
    /// <summary>Bytes of JSON allowed per value of each of the four number arrays: a full-precision double with its separator.</summary>
    public const int BytesPerValue = 32;

    /// <summary>Bytes allowed for everything else in the body (loss, params, classWeights, reduction: 256 KiB each at most).</summary>
    public const int OtherFieldBytes = 1 << 20;

    /// <summary>
    /// Most values <c>POST /api/losses/evaluate</c> reads into any one of <c>predictions</c> (rows × outputs), <c>targets</c>,
    /// <c>weights</c> and <c>variance</c>; past it the request is refused with 413 <c>loss.too_many_elements</c>. Measured
    /// (bench.sh evaluate): the largest request at the default, 4 million values in all four arrays (156 MiB of JSON),
    /// raised the server's resident memory by 193 MiB at its peak, two at once by 318 MiB.
    /// </summary>
    [Range(1, 100_000_000)]
    public int MaxElements { get; set; } = 4_000_000;

    /// <summary>Evaluations in progress at once; past it a request gets 429 <c>loss.too_many_evaluations</c> with Retry-After.</summary>
    [Range(1, 64)]
    public int MaxConcurrentEvaluations { get; set; } = 2;

    /// <summary>
    /// Longest the body of one evaluation may take to arrive (it holds one of few slots while it does); past it 408
    /// <c>loss.request_timeout</c>. The largest allowed body arrives in seconds on a LAN.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan MaxBodyTime { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The body limit Kestrel enforces, derived from <see cref="MaxElements"/> so a body cannot run far past it.</summary>
    public long MaxRequestBytes() => 4L * BytesPerValue * MaxElements + OtherFieldBytes;
}

/// <summary>Section <c>Jobs</c>: limits on training specs, listings and histories.</summary>
/// <summary>Limits of sweeps (<c>POST /api/sweeps</c>) and how often workers look for sweeps that can start a trial.</summary>
public sealed class SweepOptions
{
    /// <summary>Most trials one sweep may ask for (<c>maxTrials</c>).</summary>
    [Range(1, 100_000)]
    public int MaxTrials { get; set; } = 500;

    /// <summary>Largest grid a grid sweep may span; a larger one is refused rather than truncated.</summary>
    [Range(1, 100_000)]
    public int MaxGridSize { get; set; } = 500;

    /// <summary>Most parameters one sweep may vary.</summary>
    [Range(1, 1_000)]
    public int MaxParameters { get; set; } = 32;

    /// <summary>Most listed values of one parameter (each is planned against the dataset when the sweep is submitted).</summary>
    [Range(1, 100_000)]
    public int MaxValues { get; set; } = 256;

    /// <summary>Most trials of one sweep running at once (<c>maxParallel</c>).</summary>
    [Range(1, 1_000)]
    public int MaxParallel { get; set; } = 16;

    /// <summary>Trials a sweep runs at once when its spec does not say.</summary>
    [Range(1, 1_000)]
    public int DefaultParallel { get; set; } = 2;

    /// <summary>Trials a random or TPE sweep runs when its spec does not say.</summary>
    [Range(1, 100_000)]
    public int DefaultTrials { get; set; } = 20;

    /// <summary>
    /// How often each worker advances running sweeps: a safety net for a trial whose end was not followed by its sweep's
    /// next trial (its worker died in between), a sweep's maxRuntime, and a trial cancelled through the job API.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromSeconds(5);
}

public sealed class JobOptions : IValidatableObject
{
    /// <summary>Largest accepted number of epochs.</summary>
    [Range(1, 1_000_000)]
    public int MaxEpochs { get; set; } = 10_000;

    /// <summary>Largest accepted mini-batch (activation buffers are sized by it).</summary>
    [Range(1, 16_777_216)]
    public int MaxBatchSize { get; set; } = 65_536;

    /// <summary>Widest accepted hidden layer.</summary>
    [Range(1, 65_536)]
    public int MaxHiddenUnits { get; set; } = 4_096;

    /// <summary>Most hidden layers.</summary>
    [Range(1, 64)]
    public int MaxHiddenLayers { get; set; } = 8;

    /// <summary>Ceiling of a job's <c>maxRuntime</c>; also the default.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan MaxRuntime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>A checkpoint is saved every this many epochs.</summary>
    [Range(1, 1_000_000)]
    public int CheckpointEvery { get; set; } = 1;

    /// <summary>History rows returned when no limit is given.</summary>
    [Range(1, 1_000_000)]
    public int DefaultHistoryLimit { get; set; } = 1_000;

    /// <summary>Most history rows one request may return.</summary>
    [Range(1, 1_000_000)]
    public int MaxHistoryLimit { get; set; } = 10_000;

    /// <summary>Most jobs per page of the job list.</summary>
    [Range(1, 10_000)]
    public int MaxListLimit { get; set; } = 100;

    /// <summary>Most jobs one comparison request may name.</summary>
    [Range(1, 1_000)]
    public int MaxCompareJobs { get; set; } = 20;

    /// <summary>How long an Idempotency-Key is remembered.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Comment lines sent on an idle history stream so proxies keep it open.</summary>
    [Range(typeof(TimeSpan), "00:00:00.1", "00:10:00")]
    public TimeSpan StreamHeartbeat { get; set; } = TimeSpan.FromSeconds(15);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (DefaultHistoryLimit > MaxHistoryLimit)
        {
            yield return new ValidationResult(
                $"Jobs:DefaultHistoryLimit ({DefaultHistoryLimit}) is above Jobs:MaxHistoryLimit ({MaxHistoryLimit}).",
                [nameof(DefaultHistoryLimit), nameof(MaxHistoryLimit)]);
        }
    }
}

/// <summary>Which jobs a worker takes (see <c>Jobs.ComputePools</c>).</summary>
public enum WorkerPool
{
    /// <summary>By the compute device: Cuda on a GPU, Cpu otherwise.</summary>
    Auto,
    /// <summary>cpu and any jobs.</summary>
    Cpu,
    /// <summary>cuda and any jobs.</summary>
    Cuda,
}

/// <summary>How callers prove who they are.</summary>
public enum AuthMode
{
    /// <summary>Every request but health, docs and the dashboard's files needs an API key (the default).</summary>
    Keys,
    /// <summary>No keys: every caller is the owner of tenant "default". Refused at start unless every listening address is loopback.</summary>
    None,
}

/// <summary>Section <c>Auth</c>: API keys.</summary>
public sealed class AuthOptions
{
    /// <summary>The shape of an API key: <c>ts_</c>, a 16-hex-digit public id, <c>_</c>, a 43-character base64url secret.</summary>
    public const string KeyPattern = "^ts_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$";

    /// <summary>The shape of a tenant name.</summary>
    public const string TenantPattern = "^[a-z0-9][a-z0-9_-]{0,63}$";

    /// <summary><c>keys</c> (default) or <c>none</c> (one user on a laptop; loopback addresses only).</summary>
    public AuthMode Mode { get; set; } = AuthMode.Keys;

    /// <summary>
    /// An owner key (<c>ts_&lt;id&gt;_&lt;secret&gt;</c>) to create at start if it does not exist, for automation (compose,
    /// Kubernetes secrets). When empty and no key exists, the first start creates one and prints it once.
    /// </summary>
    [RegularExpression(KeyPattern, ErrorMessage = "Auth:OwnerKey must look like ts_<16 hex digits>_<43 base64url characters>; create one with --create-owner-key.")]
    public string? OwnerKey { get; set; }

    /// <summary>The tenant of the configured or first owner key.</summary>
    [RegularExpression(TenantPattern, ErrorMessage = "Auth:OwnerTenant must be 1–64 lowercase letters, digits, '-' or '_', starting with a letter or digit.")]
    public string OwnerTenant { get; set; } = "default";

    /// <summary>
    /// How long an API process trusts a key it has checked (or an id it found unknown) before reading it again. Revocations
    /// and creations reach every process at once by NOTIFY; this bounds the delay when a notification is lost.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan KeyCacheTime { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Section <c>Quotas</c>: what each tenant may use. <see cref="Default"/> applies to every tenant; <c>Tenants:&lt;name&gt;</c>
/// overrides any of its settings for one tenant (a setting it leaves out comes from <see cref="Default"/>).
/// </summary>
public sealed class QuotaOptions : IValidatableObject
{
    /// <summary>The quota of every tenant without an override, and of every setting an override leaves out.</summary>
    public TenantQuota Default { get; set; } = new()
    {
        MaxRunningJobs = 100,
        MaxQueuedJobs = 10_000,
        MaxStoredBytes = 1L << 40,
        RequestsPerSecond = 1_000,
        RequestBurst = 2_000,
    };

    /// <summary>Overrides by tenant name.</summary>
    public Dictionary<string, TenantQuota> Tenants { get; set; } = new();

    /// <summary>The <c>Retry-After</c> sent with a 429 for a full queue (<c>quota.queued_jobs</c>).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan QueueRetryAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Whether a free worker runs the fairest queued job (the tenant with fewest running jobs, then the one served least
    /// recently, then the oldest job) and holds back tenants at their running-jobs limit. Off: Hangfire's order (first in,
    /// first out) and no running-jobs limit; for comparison (<c>bench.sh fairness</c>) only.
    /// </summary>
    public bool FairScheduling { get; set; } = true;

    /// <summary>
    /// When a worker finds nothing it may start (every queued job's tenant is at its running-jobs limit), the job it was
    /// handed is scheduled again after this. A job ending wakes its tenant's next job at once; this is the safety net.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan DeferredRecheck { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The quota of <paramref name="tenant"/>: its override's settings, the rest from <see cref="Default"/>.</summary>
    public TenantLimits For(string tenant)
    {
        var own = Tenants.GetValueOrDefault(tenant);
        return new TenantLimits(
            own?.MaxRunningJobs ?? Default.MaxRunningJobs!.Value,
            own?.MaxQueuedJobs ?? Default.MaxQueuedJobs!.Value,
            own?.MaxStoredBytes ?? Default.MaxStoredBytes!.Value,
            own?.MaxUploadBytes ?? Default.MaxUploadBytes,
            own?.RequestsPerSecond ?? Default.RequestsPerSecond!.Value,
            own?.RequestBurst ?? Default.RequestBurst!.Value);
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(Default, new ValidationContext(Default), results, validateAllProperties: true);
        foreach (var (name, value) in new (string, object?)[]
        {
            (nameof(TenantQuota.MaxRunningJobs), Default.MaxRunningJobs), (nameof(TenantQuota.MaxQueuedJobs), Default.MaxQueuedJobs),
            (nameof(TenantQuota.MaxStoredBytes), Default.MaxStoredBytes), (nameof(TenantQuota.RequestsPerSecond), Default.RequestsPerSecond),
            (nameof(TenantQuota.RequestBurst), Default.RequestBurst),
        })
        {
            if (value is null)
            {
                results.Add(new ValidationResult($"Quotas:Default:{name} must have a value (every tenant without an override uses it).", [name]));
            }
        }
        foreach (var (tenant, quota) in Tenants)
        {
            if (!System.Text.RegularExpressions.Regex.IsMatch(tenant, AuthOptions.TenantPattern))
            {
                results.Add(new ValidationResult($"Quotas:Tenants:{tenant} is not a tenant name (1–64 lowercase letters, digits, '-' or '_').", [nameof(Tenants)]));
            }
            var own = new List<ValidationResult>();
            Validator.TryValidateObject(quota, new ValidationContext(quota), own, validateAllProperties: true);
            results.AddRange(own.Select(r => new ValidationResult($"Quotas:Tenants:{tenant}: {r.ErrorMessage}", r.MemberNames)));
        }
        return results;
    }
}

/// <summary>One tenant's quota as configured (<c>Quotas:Default</c> or <c>Quotas:Tenants:&lt;name&gt;</c>); null means "as the default".</summary>
public sealed class TenantQuota
{
    /// <summary>Jobs of the tenant training at once; more wait in the queue while other tenants' jobs run.</summary>
    [Range(1, 100_000)]
    public int? MaxRunningJobs { get; set; }

    /// <summary>Jobs of the tenant waiting at once; a submit past it gets 429 <c>quota.queued_jobs</c> with Retry-After.</summary>
    [Range(0, 10_000_000)]
    public int? MaxQueuedJobs { get; set; }

    /// <summary>Bytes of CSV the tenant's datasets may hold together; an upload past it gets 413 <c>quota.stored_bytes</c>.</summary>
    [Range(0L, long.MaxValue)]
    public long? MaxStoredBytes { get; set; }

    /// <summary>
    /// Largest CSV the tenant may upload, below <c>Datasets:MaxUploadBytes</c> (which always applies); past it 413
    /// <c>quota.upload_bytes</c>. Unset by default: the server's limit alone.
    /// </summary>
    [Range(1L, long.MaxValue)]
    public long? MaxUploadBytes { get; set; }

    /// <summary>Requests per second each API key of the tenant may make, sustained; past it 429 <c>quota.rate_limited</c> with Retry-After.</summary>
    [Range(0.01, 1e9)]
    public double? RequestsPerSecond { get; set; }

    /// <summary>Requests a key may make at once above the sustained rate (the token bucket's size).</summary>
    [Range(1, 1_000_000_000)]
    public int? RequestBurst { get; set; }
}

/// <summary>One tenant's quota with the defaults filled in; <see cref="MaxUploadBytes"/> null means the server's limit alone.</summary>
public sealed record TenantLimits(int MaxRunningJobs, int MaxQueuedJobs, long MaxStoredBytes, long? MaxUploadBytes, double RequestsPerSecond,
    int RequestBurst);

/// <summary>
/// Section <c>Cors</c>: browsers on other origins allowed to call the API (a dashboard hosted elsewhere). Empty, the
/// default, turns CORS off: a page on another origin can send no request a browser would preflight, and reads nothing.
/// </summary>
public sealed class CorsOptions : IValidatableObject
{
    /// <summary>Origins such as <c>https://dash.example.com</c> (scheme, host and port; no path, no wildcard).</summary>
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>How long a browser may reuse a preflight's answer.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan PreflightMaxAge { get; set; } = TimeSpan.FromMinutes(10);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (string origin in AllowedOrigins)
        {
            bool valid = Uri.TryCreate(origin, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
                && origin.TrimEnd('/').Equals(uri.GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase) && !origin.Contains('*');
            if (!valid)
            {
                yield return new ValidationResult(
                    $"Cors:AllowedOrigins: '{origin}' is not an origin; give scheme, host and optional port, e.g. https://dash.example.com (no path, no wildcard).",
                    [nameof(AllowedOrigins)]);
            }
        }
    }
}
