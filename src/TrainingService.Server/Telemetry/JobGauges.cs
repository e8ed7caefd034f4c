using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Npgsql;
using TrainingService.Server.Configuration;
using TrainingService.Server.Infrastructure;

namespace TrainingService.Server.Telemetry;

/// <summary>
/// The gauges read from the database: unfinished jobs by state (<c>trainingservice.jobs</c>: queued, running,
/// cancelling, each reported, zero included) and queued jobs by requested device (<c>trainingservice.queue.depth</c>),
/// counted every <see cref="TelemetryOptions.GaugeInterval"/> by each API process, so a scrape never waits on the
/// database. Only unfinished jobs are counted (an index range, not the whole table, which grows with every job ever run);
/// ended jobs are the counter <c>trainingservice.jobs.ended</c>. Every API process reports the same counts: aggregate
/// them with max, not sum.
/// </summary>
internal sealed class JobGauges : BackgroundService
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeSpan _interval;
    private readonly ILogger<JobGauges> _logger;
    private volatile IReadOnlyList<(string State, string Device, long Count)> _counts = [];

    public JobGauges(NpgsqlDataSource dataSource, IOptions<TelemetryOptions> options, ILogger<JobGauges> logger)
    {
        _dataSource = dataSource;
        _interval = options.Value.GaugeInterval;
        _logger = logger;
        Instruments.Meter.CreateObservableGauge("trainingservice.jobs",
            () => Jobs.JobStatus.Unfinished.Select(state => new Measurement<long>(_counts.Where(c => c.State == state).Sum(c => c.Count),
                new KeyValuePair<string, object?>("state", state))),
            "{job}", "Unfinished jobs by state (queued, running, cancelling).");
        Instruments.Meter.CreateObservableGauge("trainingservice.queue.depth",
            () => _counts.Where(c => c.State == "queued").Select(c => new Measurement<long>(c.Count, new KeyValuePair<string, object?>("device", c.Device))),
            "{job}", "Queued jobs by the device they ask for (cuda, cpu, any).");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_interval);
        do
        {
            try
            {
                _counts = await CountAsync(stoppingToken);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                _logger.LogWarning("Counting jobs for the gauges failed ({Error}); the gauges keep their last values", e.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task<IReadOnlyList<(string, string, long)>> CountAsync(CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand("SELECT status, compute_device, count(*) FROM jobs WHERE status = ANY(@unfinished) GROUP BY status, compute_device");
        command.Parameters.AddWithValue("unfinished", Jobs.JobStatus.Unfinished);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var counts = new List<(string, string, long)>();
        while (await reader.ReadAsync(cancellationToken))
        {
            counts.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2)));
        }
        return counts;
    }
}
