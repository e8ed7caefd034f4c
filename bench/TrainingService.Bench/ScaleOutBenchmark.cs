using System.Diagnostics;
using System.Text.Json.Nodes;
using Npgsql;
using TrainingService.ProcessHarness;

namespace TrainingService.Bench;

/// <summary>
/// <c>scaleout</c>: one API process and 1, 2 and 4 worker processes on one PostgreSQL, each run on a fresh database with the
/// same short jobs; then the largest run again with one worker killed (kill -9) a third of the way through and a
/// replacement started. Reported per run: jobs a minute, each worker's share, queue wait (submit → first attempt), jobs run
/// twice (a second attempt that no recorded loss explains), jobs lost (not succeeded), whether every history holds each
/// epoch exactly once, and the database transactions per job and per epoch (PostgreSQL's commit count for the database,
/// which counts each statement outside a transaction as one: the round trips that bound a cluster), plus what idle
/// workers cost the database each second.
/// </summary>
internal static class ScaleOutBenchmark
{
    private sealed record Outcome(string Run, int Workers, int Jobs, double Minutes, IReadOnlyList<int> Shares, double P50, double P95,
        int RunTwice, int Lost, bool Contiguous, long Transactions, long Epochs, double IdlePerSecond, int Resumed);

    public static async Task<int> RunAsync(string[] args)
    {
        int jobs = CommandLine.Option(args, "--jobs", 200), epochs = CommandLine.Option(args, "--epochs", 3);
        int[] workers = CommandLine.Options(args, "--workers", [1, 2, 4]);
        string admin = BenchService.Postgres();
        Console.WriteLine($"{jobs} jobs of {epochs} epochs (linear model, 400 rows, batch 32) per run; one API process; " +
            $"{Environment.ProcessorCount} cores; each run on a fresh database");
        var outcomes = new List<Outcome>();
        foreach (int n in workers)
        {
            outcomes.Add(await MeasureAsync(admin, $"{n} worker(s)", n, jobs, epochs, kill: false));
        }
        outcomes.Add(await MeasureAsync(admin, $"{workers.Max()} workers, one killed", workers.Max(), jobs, epochs * 5, kill: true));
        Print(outcomes);
        return outcomes.All(o => o.Lost == 0 && o.RunTwice == 0 && o.Contiguous) ? 0 : 1;
    }

    private static async Task<Outcome> MeasureAsync(string admin, string run, int count, int jobs, int epochs, bool kill)
    {
        string name = $"scaleout_{count}_{(kill ? "kill" : "plain")}_{DateTime.UtcNow:HHmmss}";
        string database = await CreateDatabaseAsync(admin, name);
        await using var api = await BenchService.StartAsync("api", database);
        var workers = new List<ServiceProcess>();
        try
        {
            workers.AddRange(await Task.WhenAll(Enumerable.Range(0, count).Select(_ => StartWorkerAsync(database))));
            await using var source = NpgsqlDataSource.Create(database);
            double idle = await IdleTransactionsPerSecondAsync(source, admin, name);
            string dataset = await api.Client.UploadAsync(BenchApi.Linear(400, seed: 7));
            long before = await TransactionsAsync(admin, name);
            for (int i = 0; i < jobs; i++)
            {
                await api.Client.SubmitAsync(Spec(dataset, epochs, i));
            }
            if (kill)
            {
                await WaitForEndedAsync(source, jobs / 3, TimeSpan.FromMinutes(10));
                workers[0].Kill();
                Console.Error.WriteLine($"  {run}: killed worker {workers[0].Pid} with {await EndedAsync(source)} of {jobs} jobs ended");
                workers.Add(await StartWorkerAsync(database));
            }
            await WaitForEndedAsync(source, jobs, TimeSpan.FromMinutes(15));
            await Task.Delay(1500); // PostgreSQL publishes its transaction counts within a second
            long transactions = await TransactionsAsync(admin, name) - before;
            return await SummariseAsync(source, run, count, jobs, idle, transactions);
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync();
            }
        }
    }

    private static Task<ServiceProcess> StartWorkerAsync(string database) =>
        BenchService.StartAsync("worker", database, new Dictionary<string, string> { ["Worker:WorkerCount"] = "1" });

    private static object Spec(string dataset, int epochs, int seed) => new
    {
        datasetId = dataset, target = "y", loss = "mse", optimizer = new { name = "sgd", learningRate = 0.05 }, epochs, batchSize = 32, seed,
    };

    /// <summary>Reads every job of the run: shares, waits, attempts and losses, and checks each history.</summary>
    private static async Task<Outcome> SummariseAsync(NpgsqlDataSource source, string run, int count, int jobs, double idle, long transactions)
    {
        await using var command = source.CreateCommand("""
            SELECT j.status, extract(epoch FROM j.started_at - j.created_at), j.transitions::text, j.total_epochs,
                   (SELECT count(*) FROM job_epochs e WHERE e.job_id = j.id), (SELECT coalesce(max(epoch), 0) FROM job_epochs e WHERE e.job_id = j.id),
                   extract(epoch FROM (SELECT max(finished_at) - min(created_at) FROM jobs))
            FROM jobs j
            """);
        var waits = new List<double>();
        var shares = new Dictionary<string, int>();
        int lost = 0, twice = 0, resumed = 0;
        bool contiguous = true;
        long epochs = 0;
        double seconds = 0;
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            lost += reader.GetString(0) == "succeeded" ? 0 : 1;
            waits.Add(reader.IsDBNull(1) ? double.NaN : (double)reader.GetDecimal(1));
            var transitions = JsonNode.Parse(reader.GetString(2))!.AsArray();
            var attempts = transitions.Where(t => t!["worker"] is not null).Select(t => (string)t!["worker"]!).ToList();
            int losses = transitions.Count(t => ((string?)t!["note"])?.Contains(" lost after epoch ", StringComparison.Ordinal) == true);
            twice += attempts.Count > 1 + losses ? 1 : 0;
            resumed += losses > 0 ? 1 : 0;
            foreach (var worker in attempts.Distinct())
            {
                shares[worker] = shares.GetValueOrDefault(worker) + 1;
            }
            long stored = reader.GetInt64(4), last = reader.GetInt32(5);
            contiguous &= stored == last && last == reader.GetInt32(3);
            epochs += stored;
            seconds = (double)reader.GetDecimal(6);
        }
        waits.Sort();
        return new Outcome(run, count, jobs, seconds / 60, shares.Values.OrderDescending().ToList(), Percentile(waits, 0.5), Percentile(waits, 0.95),
            twice, lost, contiguous, transactions, epochs, idle, resumed);
    }

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? double.NaN : sorted[(int)Math.Min(sorted.Count - 1, p * sorted.Count)];

    /// <summary>The database's commits and rollbacks per second while the workers wait for work (their polling and heartbeats).</summary>
    private static async Task<double> IdleTransactionsPerSecondAsync(NpgsqlDataSource source, string admin, string name)
    {
        await Task.Delay(3000); // past start-up
        long start = await TransactionsAsync(admin, name);
        var clock = Stopwatch.StartNew();
        await Task.Delay(10_000);
        return (await TransactionsAsync(admin, name) - start) / clock.Elapsed.TotalSeconds;
    }

    private static async Task<long> TransactionsAsync(string admin, string name)
    {
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = @name", connection);
        command.Parameters.AddWithValue("name", name);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task WaitForEndedAsync(NpgsqlDataSource source, int target, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (await EndedAsync(source) < target && clock.Elapsed < timeout)
        {
            await Task.Delay(250);
        }
    }

    private static async Task<long> EndedAsync(NpgsqlDataSource source)
    {
        await using var command = source.CreateCommand("SELECT count(*) FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<string> CreateDatabaseAsync(string admin, string name)
    {
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString;
    }

    private static void Print(List<Outcome> outcomes)
    {
        Console.WriteLine("| run | jobs/min | jobs per worker | queue wait p50 / p95 | run twice | lost | histories contiguous | resumed after a kill | DB transactions per job / per epoch | idle DB transactions/s |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|---|---:|---:|---:|");
        foreach (var o in outcomes)
        {
            Console.WriteLine($"| {o.Run} | {o.Jobs / o.Minutes:F0} | {string.Join(" / ", o.Shares)} | {o.P50:F2} s / {o.P95:F2} s | {o.RunTwice} | " +
                $"{o.Lost} | {(o.Contiguous ? "yes" : "NO")} | {o.Resumed} | {(double)o.Transactions / o.Jobs:F1} / {(double)o.Transactions / o.Epochs:F2} | {o.IdlePerSecond:F1} |");
        }
    }
}
