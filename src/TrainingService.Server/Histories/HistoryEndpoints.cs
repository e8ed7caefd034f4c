using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using TrainingService.Server.Access;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;
using TrainingService.Server.Jobs;

namespace TrainingService.Server.Histories;

public static class HistoryEndpoints
{
    public static IServiceCollection AddHistories(this IServiceCollection services) => services.AddSingleton<HistoryReader>();

    public static IEndpointRouteBuilder MapHistoryEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/jobs/{id:guid}/history", Get).WithTags("Histories").WithName("GetHistory").RequireRole(Role.Viewer)
            .WithSummary("Per-epoch history: exact pages (afterEpoch, toEpoch, limit), a sampled view (maxPoints), or CSV (Accept: text/csv)")
            .Produces<HistoryResponse>(200, "application/json", "text/csv").Produces(304)
            .ProducesProblem(400).ProducesProblem(404);
        app.MapGet("/api/jobs/{id:guid}/history/stream", Stream).WithTags("Histories").WithName("StreamHistory").RequireRole(Role.Viewer)
            .WithSummary("Server-Sent Events: one 'epoch' event per epoch (id = epoch; Last-Event-ID resumes), heartbeats, a final 'end' event")
            .Produces(200, contentType: "text/event-stream").ProducesProblem(404);
        app.MapGet("/api/histories", Compare).WithTags("Histories").WithName("CompareHistories").RequireRole(Role.Viewer)
            .WithSummary("One series (valLoss, trainLoss, a metric…) of several jobs, for comparing runs");
        return app;
    }

    /// <summary>The services both history reads need, bundled so the handlers list only what the request carries.</summary>
    internal sealed record HistoryServices(JobStates States, HistoryReader Reader, JobEventHub Hub, IOptions<JobOptions> Options,
        IHostApplicationLifetime Lifetime);

    /// <summary>
    /// What shapes one history representation: the query and whether CSV was asked for. <c>To</c> is the last epoch to read
    /// (a zoomed chart's range), or <see cref="int.MaxValue"/> for all.
    /// </summary>
    private readonly record struct HistoryQuery(int After, int To, int Take, int Points, string? Metric, bool Csv)
    {
        /// <summary>Strong ETag per representation: the job's version plus everything that shapes the body.</summary>
        public string ETag(Guid id, long version) => $"\"h-{id:N}-{version}-{(Csv ? "csv" : $"{After}.{To}.{Take}.{Points}.{Metric}")}\"";
    }

    private static async Task<IResult> Get(Guid id, HttpRequest request, HttpResponse response, [AsParameters] HistoryServices services,
        [AsParameters] HistoryParameters parameters, CancellationToken cancellationToken)
    {
        var settings = services.Options.Value;
        if (ParseQuery(request, settings, parameters, out var query) is { } invalid)
        {
            return invalid;
        }
        // State (and its version) before the epochs: if an epoch lands in between, the ETag names an older version than
        // the body holds, which costs the client one extra 200 later, never a 304 that hides an epoch.
        var job = await services.States.GetAsync(request.HttpContext.Caller().Tenant, id, cancellationToken);
        if (job is null)
        {
            return Problems.NotFound("job.not_found", $"No job {id}.");
        }
        string etag = query.ETag(id, job.Version);
        if (ETags.Matches(request, etag))
        {
            return ETags.NotModified(response, etag);
        }
        response.Headers.ETag = etag;
        response.Headers.CacheControl = "no-cache";
        if (query.Csv)
        {
            return new CsvHistoryResult(services.Reader, id);
        }
        return await ReadPageAsync(id, job, query, services.Reader, settings, cancellationToken);
    }

    /// <summary>The query string of a history read, as given (parsed and checked by <see cref="ParseQuery"/>).</summary>
    internal sealed record HistoryParameters(
        [FromQuery(Name = "afterEpoch")] string? AfterEpoch,
        [FromQuery(Name = "toEpoch")] string? ToEpoch,
        [FromQuery(Name = "limit")] string? Limit,
        [FromQuery(Name = "maxPoints")] string? MaxPoints,
        [FromQuery(Name = "metric")] string? Metric);

    /// <summary>Checks the query parameters; null with <paramref name="query"/> set when they are valid, else the 400.</summary>
    private static ProblemHttpResult? ParseQuery(HttpRequest request, JobOptions settings, HistoryParameters parameters, out HistoryQuery query)
    {
        query = default;
        var (afterEpoch, toEpoch, limit, maxPoints, metric) = parameters;
        if (!TryInt(afterEpoch, 0, 0, int.MaxValue, out int after))
        {
            return Problems.BadRequest("history.invalid_after_epoch", "afterEpoch must be a whole number ≥ 0.", "afterEpoch");
        }
        // A range read (a chart zoomed in) names its last epoch; an empty range is a mistake, not an empty page.
        if (!TryInt(toEpoch, int.MaxValue, 1, int.MaxValue, out int to) || to <= after)
        {
            return Problems.BadRequest("history.invalid_to_epoch", "toEpoch must be a whole number greater than afterEpoch.", "toEpoch");
        }
        if (!TryInt(limit, settings.DefaultHistoryLimit, 1, settings.MaxHistoryLimit, out int take))
        {
            return Problems.BadRequest("history.invalid_limit", $"limit must be between 1 and {settings.MaxHistoryLimit} (Jobs:MaxHistoryLimit).", "limit");
        }
        if (!TryInt(maxPoints, 0, 3, settings.MaxHistoryLimit, out int points))
        {
            return InvalidMaxPoints(settings);
        }
        if (metric is not null && !IsKnownSeries(metric))
        {
            return UnknownMetric(metric);
        }
        bool csv = request.GetTypedHeaders().Accept.Any(a => a.MediaType.Equals("text/csv", StringComparison.OrdinalIgnoreCase));
        query = new HistoryQuery(after, to, take, points, metric, csv);
        return null;
    }

    /// <summary>
    /// A sampled view (maxPoints) of the epochs after afterEpoch up to toEpoch, or an exact page of at most limit of them.
    /// </summary>
    private static async Task<IResult> ReadPageAsync(Guid id, JobState job, HistoryQuery query, HistoryReader reader, JobOptions settings,
        CancellationToken cancellationToken)
    {
        if (query.Points > 0)
        {
            // The series alone first; whole epochs only for those kept.
            var rows = await reader.ReadSeriesAsync(id, query.Metric, query.After, query.To, settings.MaxEpochs, cancellationToken);
            string series = query.Metric ?? (rows.Any(r => r.ValLoss is not null) ? "valLoss" : "trainLoss");
            int last = rows.Count > 0 ? rows[^1].Epoch : query.After;
            var sampling = HistoryReader.Sample(rows.Select(r => r.Value(series)).ToList(), query.Points);
            var kept = sampling is null ? rows : sampling.Kept.Select(i => rows[i]).ToList();
            var whole = await reader.ReadEpochsAsync(id, kept.Select(r => r.Epoch).ToList(), cancellationToken);
            if (sampling is null)
            {
                return Page(id, job, whole, last, hasMore: false, sampled: null);
            }
            string[] ranged = new[] { "trainLoss", "valLoss", series }.Distinct().ToArray();
            var buckets = sampling.Buckets.Select(b => new HistoryBucket(rows[b.Start].Epoch, rows[b.End - 1].Epoch,
                ranged.ToDictionary(name => name, name => HistoryReader.RangeOf(rows, b, name)))).ToList();
            return Page(id, job, whole, last, hasMore: false, new SampledPage(series, buckets));
        }
        // Stored epochs are exactly 1 … epochsCompleted, so a poll from there on needs no query.
        var epochs = query.After >= job.EpochsCompleted ? [] : await reader.ReadAsync(id, query.After, query.Take + 1, cancellationToken, query.To);
        bool more = epochs.Count > query.Take;
        if (more)
        {
            epochs.RemoveAt(query.Take);
        }
        return Page(id, job, epochs, epochs.Count > 0 ? epochs[^1].Epoch : query.After, more, sampled: null);
    }

    /// <summary>How a sampled page was sampled: the series whose extremes were kept, and the buckets.</summary>
    private sealed record SampledPage(string Metric, List<HistoryBucket> Buckets);

    /// <summary>A page: the epochs read, with the job's state, baseline and diagnoses as the (cached) state holds them.</summary>
    private static IResult Page(Guid id, JobState job, List<EpochResponse> epochs, int lastRead, bool hasMore, SampledPage? sampled) =>
        TypedResults.Ok(new HistoryResponse
        {
            JobId = id,
            Status = job.Status,
            StopReason = job.StopReason,
            Failure = job.Failure,
            Sampled = sampled is not null,
            Metric = sampled?.Metric,
            Buckets = sampled?.Buckets,
            EpochsCompleted = job.EpochsCompleted,
            TotalEpochs = job.TotalEpochs,
            Epochs = epochs,
            NextAfterEpoch = lastRead,
            HasMore = hasMore,
            Baseline = job.Baseline,
            Diagnoses = job.Diagnoses,
        });

    // Server-Sent Events fed by LISTEN/NOTIFY (so epochs written by a worker on another machine arrive at once), with
    // a re-read on every heartbeat in case a notification was lost. Each event carries its epoch as id, so a client
    // that reconnects with Last-Event-ID continues with the next epoch, none missed, none repeated. A stopping server
    // ends its streams at once (clients reconnect elsewhere) rather than holding shutdown open.
    private static async Task<IResult> Stream(Guid id, HttpContext context, [AsParameters] HistoryServices services, string? afterEpoch,
        CancellationToken requestAborted)
    {
        using var streaming = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, services.Lifetime.ApplicationStopping);
        var cancellationToken = streaming.Token;
        string? resumeFrom = context.Request.Headers["Last-Event-ID"].FirstOrDefault() ?? afterEpoch;
        if (!TryInt(resumeFrom, 0, 0, int.MaxValue, out int last))
        {
            return Problems.BadRequest("history.invalid_last_event_id", "Last-Event-ID (or afterEpoch) must be an epoch number.", "Last-Event-ID");
        }
        string tenant = context.Caller().Tenant;
        if (await services.States.GetAsync(tenant, id, cancellationToken) is null)
        {
            return Problems.NotFound("job.not_found", $"No job {id}.");
        }
        var signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        using var subscription = services.Hub.Subscribe(id, _ => signal.Writer.TryWrite(true));

        var events = new HistoryEventWriter(context.Response, services.Options.Value.StreamHeartbeat, last);
        Instruments.OpenStreams.Add(1);
        try
        {
            await events.StartAsync(cancellationToken);
            await StreamUntilEndAsync(tenant, id, services, events, signal.Reader, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away.
        }
        finally
        {
            Instruments.OpenStreams.Add(-1);
        }
        return TypedResults.Empty;
    }

    /// <summary>Sends epochs as they land until the job ends (then an 'end' event), the job disappears, or the stream is cancelled.</summary>
    private static async Task StreamUntilEndAsync(string tenant, Guid id, HistoryServices services, HistoryEventWriter events, ChannelReader<bool> signal,
        CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            // Status first, then epochs: a job seen as ended has all its epochs committed already.
            var job = await services.States.GetAsync(tenant, id, cancellationToken);
            if (job is null)
            {
                return; // the job no longer exists
            }
            await events.WriteEpochsAsync(services.Reader, id, job.EpochsCompleted, cancellationToken);
            if (JobStatus.IsTerminal(job.Status))
            {
                await events.WriteEndAsync(id, job, cancellationToken);
                return;
            }
            await events.HeartbeatIfDueAsync(cancellationToken);
            await WaitForEventAsync(signal, events.UntilHeartbeat, cancellationToken);
        }
    }

    /// <summary>Waits for the job's next event, or until <paramref name="timeout"/> passes.</summary>
    private static async Task WaitForEventAsync(ChannelReader<bool> signal, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(timeout);
        try
        {
            await signal.ReadAsync(wait.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Quiet for a while: loop round, re-read (in case a notification was lost) and send a heartbeat.
        }
    }

    private static async Task<Results<Ok<HistoryComparison>, ProblemHttpResult>> Compare(string? jobIds, string? metric, string? maxPoints,
        HttpContext http, JobStates states, HistoryReader reader, IOptions<JobOptions> options, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (string.IsNullOrWhiteSpace(jobIds))
        {
            return Problems.BadRequest("history.missing_job_ids", "jobIds is required, e.g. ?jobIds=a,b,c.", "jobIds");
        }
        var parts = jobIds.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length > settings.MaxCompareJobs)
        {
            return Problems.BadRequest("history.too_many_jobs", $"At most {settings.MaxCompareJobs} jobs can be compared (Jobs:MaxCompareJobs).", "jobIds");
        }
        var ids = new List<Guid>();
        foreach (var part in parts)
        {
            if (!Guid.TryParse(part, out var jobId))
            {
                return Problems.BadRequest("history.invalid_job_id", $"'{part}' is not a job id.", "jobIds");
            }
            ids.Add(jobId);
        }
        string series = metric ?? "valLoss";
        if (!IsKnownSeries(series))
        {
            return UnknownMetric(series);
        }
        if (!TryInt(maxPoints, Math.Min(500, settings.MaxHistoryLimit), 3, settings.MaxHistoryLimit, out int points))
        {
            return InvalidMaxPoints(settings);
        }
        var result = new List<HistorySeries>();
        bool sampled = false;
        foreach (var jobId in ids.Distinct())
        {
            string? status = (await states.GetAsync(http.Caller().Tenant, jobId, cancellationToken))?.Status;
            if (status is null)
            {
                return Problems.NotFound("job.not_found", $"No job {jobId}.");
            }
            var rows = await reader.ReadSeriesAsync(jobId, series, 0, int.MaxValue, settings.MaxEpochs, cancellationToken);
            var sampling = HistoryReader.Sample(rows.Select(r => r.Value(series)).ToList(), points);
            sampled |= sampling is not null;
            var kept = sampling is null ? rows : sampling.Kept.Select(i => rows[i]).ToList();
            result.Add(new HistorySeries(jobId, status, kept.Select(r => new HistoryPoint(r.Epoch, r.Value(series))).ToList()));
        }
        return TypedResults.Ok(new HistoryComparison(series, sampled, result));
    }

    private static bool IsKnownSeries(string metric) =>
        HistoryReader.BuiltInSeries.Contains(metric) || HistoryReader.MetricSeries.Contains(metric);

    private static ProblemHttpResult UnknownMetric(string metric) =>
        Problems.BadRequest("history.unknown_metric",
            $"Unknown metric '{metric}'. Known: {string.Join(", ", HistoryReader.BuiltInSeries.Concat(HistoryReader.MetricSeries))}.", "metric");

    private static ProblemHttpResult InvalidMaxPoints(JobOptions settings) =>
        Problems.BadRequest("history.invalid_max_points", $"maxPoints must be between 3 and {settings.MaxHistoryLimit}.", "maxPoints");

    private static bool TryInt(string? text, int fallback, int min, int max, out int value)
    {
        if (text is null)
        {
            value = fallback;
            return true;
        }
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;
    }

    /// <summary>
    /// One job's event stream: 'epoch' events with the epoch as id, a heartbeat comment whenever nothing was written for a
    /// heartbeat interval (however often the job's events wake the loop), and a final 'end' event.
    /// </summary>
    private sealed class HistoryEventWriter(HttpResponse response, TimeSpan heartbeat, int lastSent)
    {
        private const int PageSize = 500;
        private readonly Stopwatch _sinceWrite = new();

        /// <summary>Time left until a heartbeat is due; zero when it is.</summary>
        public TimeSpan UntilHeartbeat
        {
            get
            {
                var remaining = heartbeat - _sinceWrite.Elapsed;
                return remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero;
            }
        }

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
            await response.WriteAsync("retry: 2000\n\n", cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
            _sinceWrite.Restart();
        }

        /// <summary>Every stored epoch after the last one sent, read in pages.</summary>
        public async Task WriteEpochsAsync(HistoryReader reader, Guid id, int epochsCompleted, CancellationToken cancellationToken)
        {
            List<EpochResponse> epochs;
            do
            {
                epochs = lastSent >= epochsCompleted ? [] : await reader.ReadAsync(id, lastSent, PageSize, cancellationToken);
                foreach (var epoch in epochs)
                {
                    await response.WriteAsync($"id: {epoch.Epoch}\nevent: epoch\ndata: {JsonSerializer.Serialize(epoch, ApiJson.Options)}\n\n", cancellationToken);
                    lastSent = epoch.Epoch;
                    _sinceWrite.Restart();
                }
            }
            while (epochs.Count == PageSize);
        }

        public async Task WriteEndAsync(Guid id, JobState job, CancellationToken cancellationToken)
        {
            var end = new { jobId = id, status = job.Status, stopReason = job.StopReason, failure = job.Failure, epochsCompleted = job.EpochsCompleted };
            await response.WriteAsync($"event: end\ndata: {JsonSerializer.Serialize(end, ApiJson.Options)}\n\n", cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
        }

        /// <summary>Writes a heartbeat if one is due, then flushes what was written since the last flush.</summary>
        public async Task HeartbeatIfDueAsync(CancellationToken cancellationToken)
        {
            if (_sinceWrite.Elapsed >= heartbeat)
            {
                await response.WriteAsync(": heartbeat\n\n", cancellationToken);
                _sinceWrite.Restart();
            }
            await response.Body.FlushAsync(cancellationToken);
        }
    }

    /// <summary>
    /// The whole history as CSV, never sampled. Non-finite values are written NaN / Infinity / -Infinity. Read a page at a
    /// time, the connection going back to the pool before the page is written: a client that reads slowly holds no
    /// database connection while it dawdles (one query over the whole history would hold one until the last row is sent).
    /// </summary>
    private sealed class CsvHistoryResult(HistoryReader reader, Guid id) : IResult
    {
        private const int PageSize = 1000;

        private static readonly string[] Fixed = ["epoch", "trainLoss", "valLoss", "regularizationLoss", "learningRate", "gradientNorm",
            "durationMs", "samplesPerSecond", "recordedAt"];

        public async Task ExecuteAsync(HttpContext context)
        {
            var response = context.Response;
            response.ContentType = "text/csv; charset=utf-8";
            response.Headers.ContentDisposition = $"attachment; filename=\"job-{id}-history.csv\"";
            var cancellationToken = context.RequestAborted;
            string[]? metrics = null;
            var text = new StringBuilder();
            int after = 0;
            List<EpochResponse> page;
            do
            {
                page = await reader.ReadAsync(id, after, PageSize, cancellationToken);
                foreach (var epoch in page)
                {
                    if (metrics is null)
                    {
                        metrics = epoch.Metrics.Keys.Order(StringComparer.Ordinal).ToArray();
                        text.AppendJoin(',', Fixed.Concat(metrics)).Append('\n');
                    }
                    AppendLine(text, epoch, metrics);
                    after = epoch.Epoch;
                }
                await response.WriteAsync(text.ToString(), cancellationToken);
                text.Clear();
            }
            while (page.Count == PageSize);
            if (metrics is null)
            {
                await response.WriteAsync(string.Join(',', Fixed) + "\n", cancellationToken);
            }
        }

        private static void AppendLine(StringBuilder line, EpochResponse epoch, string[] metrics)
        {
            line.Append(epoch.Epoch.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(Number(epoch.TrainLoss)).Append(',')
                .Append(epoch.ValLoss is double v ? Number(v) : "").Append(',')
                .Append(Number(epoch.RegularizationLoss)).Append(',')
                .Append(Number(epoch.LearningRate)).Append(',')
                .Append(Number(epoch.GradientNorm)).Append(',')
                .Append(Number(epoch.DurationMs)).Append(',')
                .Append(Number(epoch.SamplesPerSecond)).Append(',')
                .Append(epoch.RecordedAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            foreach (var name in metrics)
            {
                line.Append(',').Append(epoch.Metrics.TryGetValue(name, out var m) ? Number(m) : "");
            }
            line.Append('\n');
        }

        // Invariant culture writes non-finite values as NaN, Infinity and -Infinity.
        private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
    }
}
